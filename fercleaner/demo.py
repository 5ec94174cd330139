"""`make demo`'s last step: check a scored synthetic run against its truth, say what to run next.

Run as `python -m fercleaner.demo RUN_DIR TRUTH_PARQUET`. The truth file is the one
`fercleaner synth` writes beside the dataset (`<dataset>.truth.parquet`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def evaluate_flags(run_dir: str | Path, truth_path: str | Path) -> dict[str, Any]:
    """Precision, recall and AP of a run's flags against planted noise; how often proposals hit.

    The run is opened and validated by `fercleaner.runs.read_run`. Returns the detection
    metrics of `fercleaner.bench.metrics.get_detection_metrics` plus
    `correction_accuracy` (proposed == clean label, over flagged truly-noisy samples).
    """
    from fercleaner.bench.metrics import get_correction_accuracy, get_detection_metrics
    from fercleaner.runs import read_run

    scores = read_run(run_dir).scores
    truth = pd.read_parquet(truth_path, columns=["sample_id", "clean_label", "is_noisy"])
    joined = scores.merge(truth, on="sample_id", how="inner", validate="one_to_one")
    if len(joined) < len(scores):
        raise ValueError(
            f"{len(scores) - len(joined)} scored samples are not in {truth_path}; is it the truth"
            " file of the scored dataset?"
        )
    metrics = get_detection_metrics(
        joined["is_noisy"].to_numpy(bool),
        joined["label_quality"].to_numpy(float),
        joined["is_label_issue"].to_numpy(bool),
    )
    metrics["correction_accuracy"] = get_correction_accuracy(
        joined["clean_label"].astype(str).to_numpy(dtype=object),
        joined["proposed_label"].astype(str).to_numpy(dtype=object),
        is_noisy=joined["is_noisy"].to_numpy(bool),
        is_label_issue=joined["is_label_issue"].to_numpy(bool),
    )
    metrics["samples"] = len(joined)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Print the evaluation and the review/export commands; exit code 2 on bad arguments or run."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m fercleaner.demo RUN_DIR TRUTH_PARQUET", file=sys.stderr)
        return 2
    from fercleaner.errors import FercleanerError

    run_dir, truth = Path(args[0]), Path(args[1])
    try:
        m = evaluate_flags(run_dir, truth)
    except FercleanerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(f"Planted label errors: {m['true_errors']} of {m['samples']} ({m['noise_rate']:.0%})")
    print(
        f"Flagged: {m['flagged']}  precision {m['precision']:.2f}  recall {m['recall']:.2f}"
        f"  F1 {m['f1']:.2f}  average precision {m['ap']:.2f} (chance {m['noise_rate']:.2f})"
    )
    if not np.isnan(m["correction_accuracy"]):
        print(
            f"Proposed label = true label for {m['correction_accuracy']:.0%} of the caught errors"
        )
    print()
    print("Next:")
    print(f"  review the flags:  .venv/bin/fercleaner review {run_dir}")
    cleaned = run_dir.parent / "cleaned"
    print(f"  export cleaned:    .venv/bin/fercleaner export {run_dir} --out {cleaned}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
