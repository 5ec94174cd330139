"""`--downstream`: does cleaning help a classifier? Same recipe trained on noisy, cleaned and clean labels.

A stratified, seeded share of the benchmark samples is held out with its *true* labels
and never cleaned or trained on. The same classifier (the recipe with method
`baseline`, trained on split `train` only) is trained three times on the rest: (a) the
noisy labels, (b) the labels after applying fercleaner's proposals by `policy`, (c) the
true labels; each is scored on the held-out split. The cleaner's value is the share of
the (a) -> (c) accuracy gap that (b) recovers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

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
