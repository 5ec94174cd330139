"""Confident learning's estimates from the data: per-class thresholds, confident joint, noise rates.

Following Northcutt et al. (JAIR 2021, "Confident Learning"): the threshold of class k
is the mean probability of k over the samples *given* k (what "confident in k" means
for this model on this data), and a sample counts towards the confident joint cell
(given i, true j) when j is its most probable class among those that reach their
threshold. Nothing here is a hand-picked constant.
"""

from __future__ import annotations

import numpy as np

from fercleaner.scoring._validation import check_labels_probs


def estimate_per_class_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Per-class confidence thresholds t_k = mean of pred_probs[:, k] over samples given k.

    Args:
        labels: (N,) given class indices.
        pred_probs: (N, C) class probabilities (or any per-class distribution, e.g. soft labels).

    Returns:
        (C,) float64. A class nobody was given gets +inf: there is no data saying what
        confident means for it, so no sample is counted as confidently in it.
    """
    labels, pred_probs = check_labels_probs(labels, pred_probs)
    return _thresholds(labels, pred_probs)


def _thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    num_classes = pred_probs.shape[1]
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    sums = np.zeros(num_classes)
    np.add.at(sums, labels, pred_probs[np.arange(len(labels)), labels])
    with np.errstate(invalid="ignore", divide="ignore"):
        thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    return thresholds


def find_confident_class(pred_probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N,) class each sample is confidently in; -1 where no class reaches its threshold.

    One class at or above its threshold: that class. Several: the most probable class
    overall (as cleanlab does), not the most probable of those above threshold. A rare
    class's threshold is low (its mean probability is low), so the paper's "most probable
    above threshold" hands it every sample whose top class narrowly missed its own
    threshold; on FERPlus that inflated contempt's column of the joint ~3x and cost
    0.01-0.03 F1 on every model measured (docs/benchmarks.md, flag rules).
    Trusts its inputs (callers validated them).
    """
    above = pred_probs >= thresholds[None, :]
    several = above.sum(axis=1) > 1
    best = np.where(several, pred_probs.argmax(axis=1), above.argmax(axis=1))
    return np.where(above.any(axis=1), best, -1)


def estimate_confident_joint(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    thresholds: np.ndarray | None = None,
    calibrate: bool = True,
) -> np.ndarray:
    """The (C, C) confident joint: rows = given class, columns = confidently predicted class.

    Args:
        labels: (N,) given class indices.
        pred_probs: (N, C) out-of-sample (or at least not over-fitted) class probabilities.
        thresholds: (C,) per-class thresholds; estimated from the data when None.
        calibrate: rescale each row to sum to the number of samples given that class, so
            the joint also accounts for samples that reached no threshold.

    Returns:
        (C, C) float64 counts (integers when `calibrate` is False).
    """
    labels, pred_probs = check_labels_probs(labels, pred_probs)
    if thresholds is None:
        thresholds = _thresholds(labels, pred_probs)
    return _confident_joint(labels, pred_probs, np.asarray(thresholds, dtype=np.float64), calibrate)


def _confident_joint(
    labels: np.ndarray, pred_probs: np.ndarray, thresholds: np.ndarray, calibrate: bool
) -> np.ndarray:
    num_classes = pred_probs.shape[1]
    confident = find_confident_class(pred_probs, thresholds)
    keep = confident >= 0
    joint = np.zeros((num_classes, num_classes))
    np.add.at(joint, (labels[keep], confident[keep]), 1.0)
    if not calibrate:
        return joint
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    row_sums = joint.sum(axis=1)
    calibrated = np.zeros_like(joint)
    for k in range(num_classes):
        if row_sums[k] > 0:
            calibrated[k] = joint[k] / row_sums[k] * counts[k]
        else:  # no sample of class k was confident in anything: no evidence of noise
            calibrated[k, k] = counts[k]
    return calibrated


def estimate_noise_rates(
    labels: np.ndarray, pred_probs: np.ndarray, *, thresholds: np.ndarray | None = None
) -> np.ndarray:
    """(C,) estimated fraction of samples given class k whose true class is another one."""
    labels, pred_probs = check_labels_probs(labels, pred_probs)
    joint = estimate_confident_joint(labels, pred_probs, thresholds=thresholds)
    counts = joint.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(counts > 0, 1.0 - np.diag(joint) / np.maximum(counts, 1), 0.0)
    return np.clip(rates, 0.0, 1.0)


def estimate_issue_counts(
    labels: np.ndarray, pred_probs: np.ndarray, *, thresholds: np.ndarray | None = None
) -> np.ndarray:
    """(C,) int: samples given class k to flag = round(off-diagonal mass of its calibrated row)."""
    labels, pred_probs = check_labels_probs(labels, pred_probs)
    joint = estimate_confident_joint(labels, pred_probs, thresholds=thresholds)
    off_diagonal = joint.sum(axis=1) - np.diag(joint)
    return np.rint(off_diagonal).astype(np.int64)
