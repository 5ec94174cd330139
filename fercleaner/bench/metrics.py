"""Benchmark metrics as pure functions on arrays: detection, correction, soft labels, calibration.

Direction conventions: `label_quality` low = suspect, so detection scores use
`1 - label_quality`; `is_noisy` is the truth (given label != true label).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

from fercleaner.arrays import get_entropy


def get_detection_metrics(
    is_noisy: np.ndarray, label_quality: np.ndarray, is_label_issue: np.ndarray
) -> dict[str, float]:
    """AP and AUROC of `1 - label_quality`, precision/recall/F1 of the flags, against the truth.

    AP/AUROC are NaN when the truth holds a single class (no errors or only errors).
    """
    is_noisy = np.asarray(is_noisy, dtype=bool)
    score = 1.0 - np.asarray(label_quality, dtype=np.float64)
    flags = np.asarray(is_label_issue, dtype=bool)
    both_kinds = 0 < is_noisy.sum() < len(is_noisy)
    true_positives = int((flags & is_noisy).sum())
    precision = true_positives / flags.sum() if flags.any() else 0.0
    recall = true_positives / is_noisy.sum() if is_noisy.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "ap": float(average_precision_score(is_noisy, score)) if both_kinds else float("nan"),
        "auroc": float(roc_auc_score(is_noisy, score)) if both_kinds else float("nan"),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "flagged": int(flags.sum()),
        "true_errors": int(is_noisy.sum()),
        "noise_rate": float(is_noisy.mean()) if len(is_noisy) else 0.0,
    }


def get_correction_accuracy(
    true_labels: np.ndarray,
    proposed_labels: np.ndarray,
    *,
    is_noisy: np.ndarray,
    is_label_issue: np.ndarray,
) -> float:
    """Share of flagged true errors whose proposed label is the true one (NaN if none flagged)."""
    hit = np.asarray(is_noisy, dtype=bool) & np.asarray(is_label_issue, dtype=bool)
    if not hit.any():
        return float("nan")
    right = (
        np.asarray(true_labels, dtype=object)[hit] == np.asarray(proposed_labels, dtype=object)[hit]
    )
    return float(right.mean())


def get_vote_entropy(votes: np.ndarray) -> np.ndarray:
    """(N,) Shannon entropy (nats) of each row's vote distribution."""
    return get_entropy(_normalise(votes))


def get_soft_label_metrics(
    votes: np.ndarray, soft_label: np.ndarray, uncertainty: np.ndarray
) -> dict[str, float]:
    """KL(vote distribution || soft_label) (mean, nats) and Spearman(uncertainty, vote entropy).

    Args:
        votes: (N, C) vote counts over the classes (rows with no vote are skipped).
        soft_label: (N, C) proposed distributions; clipped at 1e-6 so KL stays finite.
        uncertainty: (N,) higher = less certain.
    """
    votes = np.asarray(votes, dtype=np.float64)
    keep = votes.sum(axis=1) > 0
    p = _normalise(votes[keep])
    q = np.clip(np.asarray(soft_label, dtype=np.float64)[keep], 1e-6, 1.0)
    q = q / q.sum(axis=1, keepdims=True)
    kl = (p * (np.log(np.clip(p, 1e-12, 1.0)) - np.log(q))).sum(axis=1)
    entropy = get_vote_entropy(votes[keep])
    unc = np.asarray(uncertainty, dtype=np.float64)[keep]
    # a constant input (up to rounding) has no rank correlation
    defined = len(unc) > 2 and np.ptp(unc) > 1e-9 and np.ptp(entropy) > 1e-9
    rho = spearmanr(unc, entropy).statistic if defined else float("nan")
    return {"kl_votes_soft": float(kl.mean()), "spearman_uncertainty_vote_entropy": float(rho)}


def get_reliability_curve(
    label_quality: np.ndarray, is_noisy: np.ndarray, *, bins: int = 10
) -> dict[str, list[float]]:
    """Per equal-width label_quality bin: mean label_quality, share of right given labels, count.

    A calibrated label_quality lies on the diagonal (quality 0.8 -> 80% of labels right).
    Empty bins are omitted.
    """
    quality = np.asarray(label_quality, dtype=np.float64)
    right = ~np.asarray(is_noisy, dtype=bool)
    which = np.clip((quality * bins).astype(int), 0, bins - 1)
    out: dict[str, list[float]] = {"mean_quality": [], "fraction_correct": [], "count": []}
    for b in range(bins):
        members = which == b
        if members.any():
            out["mean_quality"].append(float(quality[members].mean()))
            out["fraction_correct"].append(float(right[members].mean()))
            out["count"].append(int(members.sum()))
    return out


def _normalise(votes: np.ndarray) -> np.ndarray:
    votes = np.asarray(votes, dtype=np.float64)
    return votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-12)
