"""`fercleaner score` on FERPlus validation with real annotator noise: wall time, peak RSS, AP.

The given label of each image is one tagger's vote (a seeded draw from its 10 votes);
the truth is the strict 10-vote majority (images without one are left out). The
dataset is written in the `csv` layout, scored by a `fercleaner score` child process
(measured with wait4), and `1 - label_quality` is ranked against "given != majority".
Prints one JSON object. Example (about 3.4k images):

    .venv/bin/python bench/score_ferplus_annotator.py --out /tmp/ferplus-bench \\
        --recipe ferplus train.epochs=10
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

#: The shared FERPlus copy, relative to a project checkout.
DEFAULT_FERPLUS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ferplus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferplus", type=Path, default=DEFAULT_FERPLUS, help="FERPlus root")
    parser.add_argument("--out", type=Path, required=True, help="work folder (replaced)")
    parser.add_argument("--split", default="val", help="FERPlus split to clean")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tagger draw")
    parser.add_argument("--recipe", default="ferplus")
    parser.add_argument("--method", default=None)
    parser.add_argument("overrides", nargs="*", help="recipe overrides key=value")
    args = parser.parse_args()

    import pandas as pd

    from fercleaner.bench.materialize import write_noisy_dataset
    from fercleaner.bench.metrics import get_detection_metrics
    from fercleaner.bench.protocols import make_annotator_noise
    from fercleaner.bench.resources import run_measured
    from fercleaner.datasets import read_dataset
    from fercleaner.scoring import read_scores

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    source = read_dataset(args.ferplus, "ferplus")
    samples = source.samples[source.samples["split"].astype(str) == args.split].reset_index(
        drop=True
    )
    noisy = make_annotator_noise(samples, source.classes, seed=args.seed)
    dataset = write_noisy_dataset(noisy, args.out)

    run_dir = args.out / "run"
    command = [
        sys.executable,
        "-m",
        "fercleaner",
        "score",
        str(dataset),
        "--out",
        str(run_dir),
        "--recipe",
        args.recipe,
        *(["--method", args.method] if args.method else []),
        *args.overrides,
    ]
    process = run_measured(command, log_path=args.out / "score.log")
    if process.returncode != 0:
        raise SystemExit(f"fercleaner score failed ({process.returncode}):\n{process.tail()}")

    scores = read_scores(run_dir / "scores.parquet").frame
    truth = pd.read_parquet(args.out / "truth.parquet")
    joined = scores.merge(truth[["sample_id", "is_noisy", "true_label"]], on="sample_id")
    metrics = get_detection_metrics(
        joined["is_noisy"].to_numpy(bool),
        joined["label_quality"].to_numpy(float),
        joined["is_label_issue"].to_numpy(bool),
    )
    per_source = {}
    for column in scores.columns:
        if column.endswith("label_quality_signal"):
            per_source[column] = get_detection_metrics(
                joined["is_noisy"].to_numpy(bool),
                joined[column].to_numpy(float),
                joined["is_label_issue"].to_numpy(bool),
            )["ap"]
    caught = joined["is_label_issue"] & joined["is_noisy"]
    run_info = json.loads((run_dir / "run.json").read_text())
    result = {
        "benchmark": "score_ferplus_annotator",
        "split": args.split,
        "recipe": args.recipe,
        "overrides": args.overrides,
        "method": run_info["method"],
        "samples": len(joined),
        "left_out_no_majority": noisy.protocol["left_out"],
        "noise_rate": round(metrics["noise_rate"], 4),
        "ap": round(metrics["ap"], 4),
        "auroc": round(metrics["auroc"], 4),
        "ap_per_source": {k: round(v, 4) for k, v in per_source.items()},
        "precision": round(metrics["precision"], 4),
        "recall": round(metrics["recall"], 4),
        "flagged": metrics["flagged"],
        "correction_accuracy": round(
            float(
                (joined.loc[caught, "proposed_label"] == joined.loc[caught, "true_label"]).mean()
            ),
            4,
        ),
        "wall_s": round(process.wall_s, 1),
        "peak_rss_mb": round(process.peak_rss_mb, 1),
        "train_s": run_info["timings"],
        "precision_mode": run_info["precision"],
        "command": " ".join(command),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
