"""Does `issue_type` tell a wrong label from an ambiguous face where the truth can?

On FERPlus a tagger's wrong vote and an ambiguous face are one event (docs/benchmarks.md,
"Issue types against people"), so there no rule can split them the way issue 10 (part 3)
asks. Synthetic faces can: `fercleaner synth --ambiguity` mixes a second expression into a
share of the faces (weight 0.2-0.45). Here each mixed face is given one simulated tagger's
label, drawn from its mixture (so the minority expression now and then), and a share of
the clear faces get a planted wrong label (symmetric flip). The truth of every flagged
image is then known and the two kinds do not overlap:

- `mislabeled` should be a planted flip on a clear face;
- `ambiguous` should be a mixed face (whichever of its two expressions it was given).

Per seed: generate (csv layout, the generator's AU and valence-arousal columns dropped,
as a real dataset such as FERPlus has none) -> label -> `fercleaner score` with no recipe
(the default) -> per issue type its precision, base rate among the flagged images, lift
(target 1.5) and max_lift (1 / base rate), the confusion of given type x truth, and the
detection AP for "given label != the face's dominant expression". Prints one JSON object,
with mean ± sd over seeds, and writes it to `<out>/issue_type_synth.json`. Finished
seeds (their run.json exists) are read, not scored again; a seed folder made with other
settings is refused.

    .venv/bin/python bench/issue_type_synth.py --out DIR [--n 3000] [--seeds 0 1 2] \\
        [--ambiguity 0.3] [--flip-rate 0.12] [--score-args '--recipe quick']
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fercleaner.arrays import to_matrix
from fercleaner.atomic import atomic_path, write_json_atomic
from fercleaner.bench.metrics import get_detection_metrics
from fercleaner.bench.suite_report import get_mean_sd
from fercleaner.scoring import read_scores
from fercleaner.synth import write_synthetic_dataset
from fercleaner.synth.dataset import read_truth, truth_path
from fercleaner.synth.labels import inject_label_noise

#: What a face is, for the truth of its issue type.
KINDS = ("clear", "flipped", "ambiguous_given_major", "ambiguous_given_minor")
#: The issue type each kind should get when flagged (a clear face should not be flagged).
EXPECTED_TYPE = {"flipped": "mislabeled", "ambiguous": "ambiguous"}
#: Issue 10's target for precision / base rate.
TARGET_LIFT = 1.5


def plant_labels(
    truth: pd.DataFrame, classes: list[str], *, flip_rate: float, seed: int
) -> pd.DataFrame:
    """Given labels and the kind of each face: mixed faces get a tagger's draw from their
    mixture, `flip_rate` of the clear faces a symmetric flip (exact count), the rest their
    expression. Returns sample_id, given_label, kind (one of `KINDS`)."""
    rng = np.random.default_rng(seed)
    index = {name: i for i, name in enumerate(classes)}
    clean = truth["clean_label"].astype(str).map(index).to_numpy(dtype=np.int64)
    ambiguous = truth["ambiguous"].to_numpy(dtype=bool)
    given = clean.copy()
    clear = np.flatnonzero(~ambiguous)
    given[clear] = inject_label_noise(
        clean[clear], rate=flip_rate, kind="symmetric", classes=classes, rng=rng
    )
    mixed = np.flatnonzero(ambiguous)
    soft = to_matrix(truth["soft_label"].iloc[mixed])
    cdf = np.cumsum(soft, axis=1) / soft.sum(axis=1, keepdims=True)
    given[mixed] = (cdf <= rng.random(len(mixed))[:, None]).sum(axis=1).clip(0, len(classes) - 1)
    kind = np.full(len(truth), "clear", dtype=object)
    kind[~ambiguous & (given != clean)] = "flipped"
    kind[ambiguous] = np.where(given[ambiguous] == clean[ambiguous], KINDS[2], KINDS[3])
    return pd.DataFrame(
        {
            "sample_id": truth["sample_id"].astype(str).to_numpy(),
            "given_label": np.asarray(classes, dtype=object)[given],
            "kind": kind,
        }
    )


def get_split_metrics(flags: np.ndarray, issue_type: np.ndarray, kind: np.ndarray) -> dict:
    """Per expected type: count, precision, base rate among flagged, lift, max_lift, and
    the share of the flagged images of its truth that get it; and the confusion
    {given type: {kind: count}} over the flagged images."""
    flags = np.asarray(flags, dtype=bool)
    issue_type = np.asarray(issue_type, dtype=object)
    kind = np.asarray(kind, dtype=object)
    is_truth = {
        "flipped": kind == "flipped",
        "ambiguous": np.char.startswith(kind.astype(str), "ambiguous"),
    }
    out: dict = {"flagged": int(flags.sum())}
    for truth_name, type_name in EXPECTED_TYPE.items():
        given_type = flags & (issue_type == type_name)
        flagged_truth = flags & is_truth[truth_name]
        count = int(given_type.sum())
        precision = float(is_truth[truth_name][given_type].mean()) if count else float("nan")
        base = float(is_truth[truth_name][flags].mean()) if flags.any() else float("nan")
        out[type_name] = {
            "count": count,
            "precision": precision,
            "base_rate": base,
            "lift": precision / base if base > 0 else float("nan"),
            "max_lift": 1.0 / base if base > 0 else float("nan"),
            "recall_among_flagged": float(given_type[flagged_truth].mean())
            if flagged_truth.any()
            else float("nan"),
        }
    out["confusion"] = {
        name: {k: int((flags & (issue_type == name) & (kind == k)).sum()) for k in KINDS}
        for name in sorted(set(issue_type[flags].tolist()))
    }
    return out


def make_dataset(
    folder: Path, *, n: int, seed: int, ambiguity: float, flip_rate: float
) -> pd.DataFrame:
    """Write the labelled synthetic dataset at `folder` (csv layout, one split); return the
    planted labels with their kinds."""
    write_synthetic_dataset(
        folder, n=n, layout="csv", seed=seed, ambiguity_rate=ambiguity, splits={"train": 1.0}
    )
    truth, settings = read_truth(truth_path(folder))
    planted = plant_labels(truth, list(settings["classes"]), flip_rate=flip_rate, seed=seed)
    manifest = pd.read_csv(folder / "labels.csv", keep_default_na=False)
    labels = planted.set_index("sample_id")["given_label"]
    manifest = manifest[["path", "split"]].assign(label=manifest["path"].map(labels).to_numpy())
    with atomic_path(folder / "labels.csv") as tmp:
        manifest[["path", "label", "split"]].to_csv(tmp, index=False)
    return planted


def run_seed(
    out: Path, *, n: int, seed: int, ambiguity: float, flip_rate: float, overrides: list[str]
) -> dict:
    """One seed: dataset, default score run (skipped when finished: run.json is written
    last), metrics. A seed folder made with other settings is refused, not reused."""
    folder, run = out / f"seed{seed}" / "dataset", out / f"seed{seed}" / "run"
    planted_path = out / f"seed{seed}" / "planted.parquet"
    settings = {"n": n, "ambiguity": ambiguity, "flip_rate": flip_rate, "score": overrides}
    settings_path = out / f"seed{seed}" / "settings.json"
    earlier = json.loads(settings_path.read_text()) if settings_path.is_file() else settings
    if earlier != settings:
        raise SystemExit(
            f"{settings_path.parent} was made with {json.dumps(earlier)}, not"
            f" {json.dumps(settings)}; give --out another folder"
        )
    settings_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(settings_path, settings)
    if not planted_path.is_file():
        planted = make_dataset(folder, n=n, seed=seed, ambiguity=ambiguity, flip_rate=flip_rate)
        with atomic_path(planted_path) as tmp:
            planted.to_parquet(tmp, index=False)
    planted = pd.read_parquet(planted_path).set_index("sample_id")
    if not (run / "run.json").is_file():
        command = [
            sys.executable,
            "-m",
            "fercleaner",
            "score",
            str(folder),
            "--out",
            str(run),
            *overrides,
        ]
        subprocess.run(command, check=True)
    scores = read_scores(run / "scores.parquet").frame
    kind = planted.loc[scores["sample_id"].astype(str), "kind"].to_numpy(dtype=object)
    wrong = np.isin(kind, ("flipped", KINDS[3]))
    flags = scores["is_label_issue"].to_numpy(dtype=bool)
    detection = get_detection_metrics(
        wrong, scores["label_quality"].to_numpy(dtype=np.float64), flags
    )
    metrics = get_split_metrics(
        flags, scores["issue_type"].astype(str).to_numpy(dtype=object), kind
    )
    counts = {k: int((kind == k).sum()) for k in KINDS}
    return {
        "seed": seed,
        "samples": len(scores),
        "kinds": counts,
        # the run's own record, so a resumed bench reports it too
        "score_wall_s": json.loads((run / "run.json").read_text())["timings"]["total_s"],
        "detection": detection,
        **metrics,
    }


def summarize(runs: list[dict]) -> dict:
    """Mean ± sd over seeds of each type's precision, base rate, lift and count."""
    summary: dict = {}
    for type_name in EXPECTED_TYPE.values():
        summary[type_name] = {
            key: get_mean_sd([run[type_name][key] for run in runs])
            for key in (
                "count",
                "precision",
                "base_rate",
                "lift",
                "max_lift",
                "recall_among_flagged",
            )
        }
        summary[type_name]["meets_target"] = summary[type_name]["lift"]["mean"] >= TARGET_LIFT
    summary["detection_ap"] = get_mean_sd([run["detection"]["ap"] for run in runs])
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="working folder (datasets, runs, JSON)"
    )
    parser.add_argument("--n", type=int, default=3000, help="faces per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ambiguity", type=float, default=0.3, help="share of mixed faces")
    parser.add_argument(
        "--flip-rate", type=float, default=0.12, help="share of clear faces flipped"
    )
    parser.add_argument(
        "--score-args",
        default="",
        help="more arguments for `fercleaner score` (default none: the default run), "
        "e.g. '--recipe quick train.epochs=2'",
    )
    args = parser.parse_args(argv)
    runs = [
        run_seed(
            args.out,
            n=args.n,
            seed=seed,
            ambiguity=args.ambiguity,
            flip_rate=args.flip_rate,
            overrides=shlex.split(args.score_args),
        )
        for seed in args.seeds
    ]
    result = {
        "n": args.n,
        "ambiguity": args.ambiguity,
        "flip_rate": args.flip_rate,
        "score_args": args.score_args,
        "target_lift": TARGET_LIFT,
        "summary": summarize(runs),
        "runs": runs,
    }
    write_json_atomic(args.out / "issue_type_synth.json", result)
    print(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
