"""`is_label_issue`: where the model names another class, or as many as the confident joint says.

- `argmax`: flag every sample whose most probable class is not its given label. For
  probabilities a model computed on its own training samples (fercleaner's default,
  in-sample scoring) this is the rule to use: the confident joint below assumes
  out-of-sample probabilities, and in-sample ones are inflated on the given class, so
  its per-class thresholds sit high and it counts too few errors. On FERPlus validation
  with annotator noise (393 wrong of 2,866), the same in-sample probabilities flagged 557
  with F1 0.524 under `argmax` and 231 with F1 0.436 under `noise_rate`
  (docs/benchmarks.md); on a held-out real-noise set, argmax flags of one in-sample model
  had F1 0.531 against 0.497 for cleanlab's rule on 5-fold probabilities (issue 14).

Two rules from confident learning (Northcutt et al., JAIR 2021) for out-of-sample
probabilities (`train.folds` > 1, or a user's own `--predictions`), both with counts
estimated from the data, so no threshold is hand-picked:

- `noise_rate` (cleanlab's default "prune by noise rate"): for every off-diagonal
  cell (given i, true j) of the calibrated confident joint, flag the n_ij samples given i
  with the largest margin p_j - p_i. Each count is pair-specific, so structured noise
  (fear given for surprise) is looked for where it is.
- `class` ("prune by class"): for each given class k, flag the n_k = sum_j n_kj samples
  with the lowest label quality. The ranking can come from any label-quality signal
  (e.g. the combination of several sources), which the margin rule cannot use.

Any way a sample whose given label is the model's own prediction is never flagged.
Measured over 15 trained models on synthetic and FERPlus noise (docs/benchmarks.md):
mean F1 0.548 for `noise_rate` vs 0.534 for `class`; `class` wins only on uniform noise.
"""

from __future__ import annotations

import numpy as np

from fercleaner.scoring._validation import check_labels_probs, check_vector
from fercleaner.scoring.quality import get_label_quality
from fercleaner.scoring.thresholds import _confident_joint, _thresholds

#: Flag rules `find_label_issues` knows.
FLAG_RULES = ("argmax", "noise_rate", "class")


def find_label_issues(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    rule: str = "noise_rate",
    label_quality: np.ndarray | None = None,
    thresholds: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) bool mask of samples whose given label is likely wrong.

    Args:
        labels: (N,) given class indices.
        pred_probs: (N, C) class probabilities; they estimate the counts and, for
            `noise_rate`, the margins.
        rule: `argmax`, `noise_rate` or `class` (module docstring).
        label_quality: (N,) ranking signal in [0, 1], low = suspect, used by `class`;
            defaults to self-confidence p[given].
        thresholds: (C,) per-class thresholds; estimated from `pred_probs` when None.

    Returns:
        (N,) bool; under the confident-joint rules never more than its off-diagonal count
        per given class.
    """
    if rule not in FLAG_RULES:
        raise ValueError(f"unknown flag rule {rule!r}; choose from {', '.join(FLAG_RULES)}")
    labels, pred_probs = check_labels_probs(labels, pred_probs)
    predicted = pred_probs.argmax(axis=1)
    if rule == "argmax":
        return predicted != labels
    n = len(labels)
    if label_quality is None:
        label_quality = get_label_quality(labels, pred_probs)
    label_quality = check_vector(label_quality, n, name="label_quality")
    if thresholds is None:
        thresholds = _thresholds(labels, pred_probs)
    joint = _confident_joint(labels, pred_probs, np.asarray(thresholds, dtype=np.float64), True)
    if rule == "noise_rate":
        mask = _prune_by_noise_rate(labels, pred_probs, np.rint(joint).astype(np.int64))
    else:
        off_diagonal = np.rint(joint.sum(axis=1) - np.diag(joint)).astype(np.int64)
        mask = _prune_by_class(labels, label_quality, off_diagonal)
    return mask & (predicted != labels)


def _prune_by_noise_rate(
    labels: np.ndarray, pred_probs: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Cell (i, j): the counts[i, j] samples given i whose p_j - p_i is largest."""
    mask = np.zeros(len(labels), dtype=bool)
    for i in range(counts.shape[0]):
        members = np.flatnonzero(labels == i)
        for j in np.flatnonzero(counts[i] > 0):
            if j == i:
                continue
            margin = pred_probs[members, j] - pred_probs[members, i]
            # stable sort: ties keep row order, so the result is deterministic
            mask[members[np.argsort(-margin, kind="stable")[: counts[i, j]]]] = True
    return mask


def _prune_by_class(
    labels: np.ndarray, label_quality: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Class k: the counts[k] samples given k with the lowest label quality."""
    mask = np.zeros(len(labels), dtype=bool)
    for k, count in enumerate(counts):
        if count <= 0:
            continue
        members = np.flatnonzero(labels == k)
        mask[members[np.argsort(label_quality[members], kind="stable")[:count]]] = True
    return mask
