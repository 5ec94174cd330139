"""Stand-in `fercleaner score` for the bench tests: scores from the benchmark's truth, no training.

Called as `python _fake_score.py DATASET --out RUN_DIR --recipe R [--method M] [key=value ...]`
by `run_benchmark(score_command=...)`. Probabilities peak at the true class (read from
the truth.parquet the bench writes beside the noisy dataset), weaker for the
cross-validated run, so the harness can be exercised end to end through the real
scoring and file code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.scoring import assemble_scores, write_scores

#: Set to `own` for a label quality that is not p[given].
LABEL_QUALITY_ENV = "FAKE_SCORE_LABEL_QUALITY"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--out", required=True)
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--method", default="baseline")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    # the csv layout's sample_id is the manifest path; reading it directly keeps this fast
    manifest = pd.read_csv(args.dataset)
    samples = pd.DataFrame(
        {
            "sample_id": manifest["path"].astype(str),
            "split": manifest["split"].astype(str),
            "given_label": manifest["label"].astype(str),
            "path": manifest["path"].astype(str),
        }
    )
    classes = [c for c in CANONICAL_CLASSES if c in set(samples["given_label"])]
    truth_path = Path(args.dataset).parent.parent / "truth.parquet"
    if truth_path.is_file():  # a bench noisy dataset: peak at the true class
        truth = pd.read_parquet(truth_path)
        true = truth.set_index("sample_id").loc[samples["sample_id"], "true_label"].to_numpy()
    else:  # a downstream dataset: "learn" the training labels
        true = samples["given_label"].to_numpy()
    index = {c: i for i, c in enumerate(classes)}
    n = len(true)
    cross_fitted = any(
        o.startswith("train.folds=") and o != "train.folds=1" for o in args.overrides
    )
    epochs = [int(o.split("=", 1)[1]) for o in args.overrides if o.startswith("train.epochs=")]
    rng = np.random.default_rng(1 if cross_fitted else 0)
    logits = rng.normal(0.0, 1.0, size=(n, len(classes)))
    logits[np.arange(n), [index[t] for t in true]] += 1.5 if cross_fitted else 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = np.array([index[g] for g in samples["given_label"]])
    signal = probs[np.arange(n), given]
    if os.environ.get(LABEL_QUALITY_ENV) == "own":
        # a label quality of the run's own that ranks apart from p[given] (as the training
        # dynamics make a real run's do)
        signal = 0.5 * signal + 0.5 * np.random.default_rng(7).random(n)
    readout = {
        "pred_probs": probs,
        "soft_label": probs,
        "uncertainty": 1 - probs.max(axis=1),
        "label_quality_signal": signal,
    }
    frame = assemble_scores(samples, classes, {args.method: readout}, method_name=args.method)
    out = Path(args.out)
    write_scores(
        frame,
        out / "scores.parquet",
        metadata={
            "classes": classes,
            "method": args.method,
            "recipe": {
                "name": args.recipe,
                "train": {"folds": 5 if cross_fitted else 1, "epochs": (epochs or [8])[-1]},
            },
        },
    )
    (out / "argv.json").write_text(json.dumps(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
