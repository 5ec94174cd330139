"""Per-source comparison of one finished run against a bench truth table, printed as JSON.

A `--method all` run keeps each method's own readout (`<source>_label_quality_signal`,
`<source>_soft_label`, `<source>_uncertainty`) beside the combined contract columns, so
one run answers "which method's signal is best" without retraining:

    python bench/compare_sources.py RUN_DIR TRUTH.parquet

TRUTH is the `truth.parquet` a bench run writes (`sample_id`, `is_noisy`, optional `votes`).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from fercleaner.bench.metrics import get_detection_metrics, get_soft_label_metrics
from fercleaner.scoring import read_scores


def _stack(column: pd.Series) -> np.ndarray:
    return np.stack([np.asarray(v, dtype=np.float64) for v in column])


def compare_sources(run_dir: str, truth_path: str) -> dict[str, dict[str, float]]:
    """Detection and soft-label metrics of every source in the run, and of the combination."""
    scores = read_scores(f"{run_dir}/scores.parquet")
    truth = pd.read_parquet(truth_path)
    frame = scores.frame.merge(
        truth[["sample_id", "is_noisy", *(["votes"] if "votes" in truth else [])]], on="sample_id"
    )
    is_noisy = frame["is_noisy"].to_numpy(bool)
    sources = list(scores.metadata.get("sources") or [scores.metadata["method"]])
    columns = {
        source: (
            f"{source}_label_quality_signal",
            f"{source}_soft_label",
            f"{source}_uncertainty",
        )
        for source in sources
    }
    columns["combined"] = ("label_quality", "soft_label", "uncertainty")
    report: dict[str, dict[str, float]] = {}
    for name, (quality, soft, uncertainty) in columns.items():
        if quality not in frame:
            continue
        metrics = get_detection_metrics(
            is_noisy, frame[quality].to_numpy(float), np.zeros(len(frame), bool)
        )
        row = {"ap": round(metrics["ap"], 4), "auroc": round(metrics["auroc"], 4)}
        if "votes" in frame and soft in frame and uncertainty in frame:
            row.update(
                {
                    k: round(v, 4)
                    for k, v in get_soft_label_metrics(
                        _stack(frame["votes"]),
                        _stack(frame[soft]),
                        frame[uncertainty].to_numpy(float),
                    ).items()
                }
            )
        report[name] = row
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("truth")
    args = parser.parse_args()
    print(json.dumps(compare_sources(args.run_dir, args.truth), indent=2))


if __name__ == "__main__":
    main()
