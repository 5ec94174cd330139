"""`--downstream`: does cleaning help? One recipe trained on noisy, cleaned and clean labels.

A stratified, seeded share of the benchmark samples is held out with its *true* labels
and never cleaned or trained on. The same classifier (the recipe with method
`baseline`, trained on split `train` only) is trained three times on the rest: (a) the
noisy labels, (b) the labels after applying fercleaner's proposals by `policy`, (c) the
true labels; each is scored on the held-out split. The cleaner's value is the share of
the (a) -> (c) accuracy gap that (b) recovers.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.bench.materialize import write_labels_csv
from fercleaner.bench.protocols import NoisyDataset
from fercleaner.bench.resources import run_measured
from fercleaner.errors import FercleanerError
from fercleaner.runs import SCORES_FILE
from fercleaner.scoring import read_scores

#: What each issue type does to a training label: relabel to proposed_label, drop the
#: sample, or keep the given label. Ambiguous faces are kept (their given label is one of
#: the plausible ones); outliers are dropped; single-class evidence is relabeled.
DEFAULT_POLICY: dict[str, str] = {
    "mislabeled": "relabel",
    "ambiguous": "keep",
    "outlier": "drop",
    "none": "keep",
}
_ACTIONS = ("relabel", "drop", "keep")


def find_holdout(truth: pd.DataFrame, *, fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: round(fraction * n_k) samples of every true class k, drawn with `seed`."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1); got {fraction}")
    rng = np.random.default_rng(seed + 1_000_003)  # independent of the noise draw
    mask = np.zeros(len(truth), dtype=bool)
    true = truth["true_label"].astype(str).to_numpy()
    for name in sorted(set(true)):
        members = np.flatnonzero(true == name)
        count = int(round(fraction * len(members)))
        mask[rng.choice(members, size=count, replace=False)] = True
    return mask


def get_cleaned_labels(
    scores: pd.DataFrame, *, policy: Mapping[str, str] = DEFAULT_POLICY
) -> pd.Series:
    """Training label per sample_id after applying `policy`; dropped samples are absent."""
    unknown = {k: v for k, v in policy.items() if v not in _ACTIONS}
    if unknown:
        raise ValueError(f"policy actions must be one of {_ACTIONS}; got {unknown}")
    action = scores["issue_type"].astype(str).map(lambda t: policy.get(t, "keep")).to_numpy()
    labels = np.where(
        action == "relabel",
        scores["proposed_label"].astype(str).to_numpy(),
        scores["given_label"].astype(str).to_numpy(),
    )
    keep = action != "drop"
    return pd.Series(
        labels[keep], index=scores["sample_id"].astype(str).to_numpy()[keep], name="label"
    )


def get_holdout_accuracy(scores: pd.DataFrame) -> float:
    """Accuracy of predicted_label on the `test` rows (whose given labels are the true ones)."""
    test = scores[scores["split"].astype(str) == "test"]
    if test.empty:
        return float("nan")
    return float((test["predicted_label"].astype(str) == test["given_label"].astype(str)).mean())


def get_gap_recovered(noisy: float, cleaned: float, clean: float) -> float:
    """(cleaned - noisy) / (clean - noisy); NaN when clean labels do not beat noisy ones."""
    gap = clean - noisy
    return float((cleaned - noisy) / gap) if gap > 0 else float("nan")


def run_downstream(
    folder: Path,
    *,
    pool: NoisyDataset,
    held: NoisyDataset,
    truth: pd.DataFrame,
    scores: pd.DataFrame,
    command: list[str],
    recipe: str | None,
    overrides: Sequence[str],
    policy: Mapping[str, str],
    report: Callable[[int, str], None],
) -> dict[str, Any]:
    """Train the baseline on noisy / cleaned / true pool labels; accuracy on the held-out share."""
    # fercleaner's scores use the csv reader's sample_ids; map them back to the source ids
    to_source = dict(zip(truth["sample_id"], truth["source_sample_id"], strict=True))
    cleaned = get_cleaned_labels(scores, policy=policy)
    cleaned.index = [to_source[s] for s in cleaned.index]
    base = pool.samples.assign(split="train")
    variants = {
        "noisy": base.assign(label=pool.truth["given_label"].to_numpy()),
        "cleaned": base.set_index("sample_id", drop=False)
        .loc[list(cleaned.index)]
        .assign(label=cleaned.to_numpy())
        .reset_index(drop=True),
        "clean": base.assign(label=pool.truth["true_label"].to_numpy()),
    }
    test = held.samples.assign(split="test", label=held.truth["true_label"].to_numpy())
    accuracy, cost = {}, {}
    for step, (name, train) in enumerate(variants.items(), start=1):
        report(step, f"downstream: training on {name} labels")
        manifest_dir = folder / name
        write_labels_csv(manifest_dir, pd.concat([train, test], ignore_index=True))
        run_dir = folder / f"{name}_run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        argv = [
            *command,
            str(manifest_dir / "labels.csv"),
            "--out",
            str(run_dir),
            *(["--recipe", recipe] if recipe else []),
            "--method",
            "baseline",
            *overrides,
            "method.options={}",  # the plain classifier training code would use
            "data.splits=[train]",
            "train.folds=1",
        ]
        result = run_measured(argv, log_path=run_dir.with_suffix(".log"))
        if result.returncode != 0:
            raise FercleanerError(
                f"downstream run {name!r} failed (exit {result.returncode}): {shlex.join(argv)}\n"
                f"last output ({result.log_path}):\n{result.tail()}"
            )
        accuracy[name] = get_holdout_accuracy(read_scores(run_dir / SCORES_FILE).frame)
        cost[name] = {
            "wall_s": result.wall_s,
            "peak_rss_mb": result.peak_rss_mb,
            "cpu_s": result.cpu_s,
        }
    given = scores["given_label"].astype(str).to_numpy()
    relabeled = int(
        (scores["issue_type"].map(lambda t: policy.get(str(t), "keep")) == "relabel").sum()
    )
    return {
        "policy": dict(policy),
        "holdout_samples": len(test),
        "train_samples": {name: len(frame) for name, frame in variants.items()},
        "dropped": int(len(given) - len(cleaned)),
        "relabeled": relabeled,
        "accuracy": accuracy,
        "gap_recovered": get_gap_recovered(
            accuracy["noisy"], accuracy["cleaned"], accuracy["clean"]
        ),
        "cost": cost,
    }
