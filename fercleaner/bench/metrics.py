"""Benchmark metrics as pure functions on arrays: detection, correction, soft labels, calibration,
crowd consensus and issue types checked against people.

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
    means, outcomes, counts, _ = _bin_means(quality, right, bins)
    return {"mean_quality": means, "fraction_correct": outcomes, "count": counts}


def get_soft_label_reliability(
    votes: np.ndarray, soft_label: np.ndarray, *, bins: int = 10
) -> dict[str, object]:
    """Reliability of a soft label against the people: does probability 0.3 mean 30% of votes?

    Every (image, class) pair is one point: the soft label's probability of the class
    against the share of the image's votes for it. Per equal-width probability bin: mean
    probability, mean vote share, count (empty bins omitted). `ece` is the count-weighted
    mean gap |probability - vote share| over those bins (0 = calibrated to the crowd); the
    many near-zero pairs dilute it, so `top_ece` is the same gap over each image's most
    probable class only (its confidence against the votes that class got).

    Args:
        votes: (N, C) vote counts (rows with no vote are skipped).
        soft_label: (N, C) distributions over the same classes.
    """
    votes = np.asarray(votes, dtype=np.float64)
    keep = votes.sum(axis=1) > 0
    share = _normalise(votes[keep])
    prob = np.asarray(soft_label, dtype=np.float64)[keep]
    means, shares, counts, ece = _bin_means(prob.ravel(), share.ravel(), bins)
    top = prob.argmax(axis=1)
    rows = np.arange(len(top))
    *_, top_ece = _bin_means(prob[rows, top], share[rows, top], bins)
    return {
        "mean_soft": means,
        "vote_share": shares,
        "count": counts,
        "ece": ece,
        "top_ece": top_ece,
    }


def _bin_means(
    x: np.ndarray, y: np.ndarray, bins: int
) -> tuple[list[float], list[float], list[int], float]:
    """Equal-width bins of `x` in [0, 1] (empty ones omitted): mean x, mean y and count per
    bin, and the count-weighted mean gap |mean x - mean y| (the ECE; NaN with no point)."""
    which = np.clip((x * bins).astype(int), 0, bins - 1)
    means: list[float] = []
    outcomes: list[float] = []
    counts: list[int] = []
    gap = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            means.append(float(x[members].mean()))
            outcomes.append(float(y[members].mean()))
            counts.append(int(members.sum()))
            gap += counts[-1] * abs(means[-1] - outcomes[-1])
    return means, outcomes, counts, float(gap / len(x)) if len(x) else float("nan")


def get_consensus_metrics(
    true_labels: np.ndarray,
    given_labels: np.ndarray,
    consensus_labels: np.ndarray,
    label_quality: np.ndarray,
) -> dict[str, float]:
    """How well a consensus (votes and/or model) recovers the truth (the `votes` protocol).

    Args:
        true_labels: (N,) the truth (strict majority of all votes), any comparable labels.
        given_labels: (N,) the labels the dataset states (plurality of the visible votes).
        consensus_labels: (N,) the system's consensus label, same kind as `true_labels`.
        label_quality: (N,) the system's quality of the *given* label, low = suspect.

    Returns:
        consensus_accuracy (consensus == truth, over all images), label_quality_ap and
        label_quality_auroc (of 1 - label_quality for given != truth; NaN when the truth
        holds a single class), changed (consensus != given), samples.
    """
    true = np.asarray(true_labels, dtype=object)
    given = np.asarray(given_labels, dtype=object)
    consensus = np.asarray(consensus_labels, dtype=object)
    if not len(true) == len(given) == len(consensus) == len(label_quality):
        raise ValueError(
            f"lengths differ: true {len(true)}, given {len(given)}, consensus "
            f"{len(consensus)}, label_quality {len(label_quality)}"
        )
    wrong = given != true
    score = 1.0 - np.asarray(label_quality, dtype=np.float64)
    both_kinds = 0 < wrong.sum() < len(wrong)
    return {
        "consensus_accuracy": float((consensus == true).mean()) if len(true) else float("nan"),
        "label_quality_ap": (
            float(average_precision_score(wrong, score)) if both_kinds else float("nan")
        ),
        "label_quality_auroc": float(roc_auc_score(wrong, score)) if both_kinds else float("nan"),
        "changed": int((consensus != given).sum()),
        "samples": int(len(true)),
    }


def get_people_issue_types(
    votes: np.ndarray, given_labels: np.ndarray, *, vote_totals: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """(N,) bool per type: what all the votes say of each image (an image can be both).

    `ambiguous`: no strict majority, or vote entropy above the median over the N images;
    `mislabeled`: a strict majority names a class other than the given one. `vote_totals`
    as in `get_issue_type_metrics`.
    """
    return _people_issue_types(votes, given_labels, vote_totals)[0]


def _people_issue_types(
    votes: np.ndarray, given_labels: np.ndarray, vote_totals: np.ndarray | None
) -> tuple[dict[str, np.ndarray], float]:
    """`get_people_issue_types` and the median vote entropy it cuts at (NaN with no image)."""
    votes = np.asarray(votes, dtype=np.float64)
    given = np.asarray(given_labels, dtype=np.int64)
    totals = votes.sum(axis=1) if vote_totals is None else np.asarray(vote_totals, float)
    top = votes.argmax(axis=1)
    majority = votes[np.arange(len(votes)), top] * 2 > totals
    entropy = get_vote_entropy(votes)
    median = float(np.median(entropy)) if len(votes) else float("nan")
    people = {"ambiguous": ~majority | (entropy > median), "mislabeled": majority & (top != given)}
    return people, median


def get_issue_type_metrics(
    votes: np.ndarray,
    given_labels: np.ndarray,
    is_label_issue: np.ndarray,
    issue_type: np.ndarray,
    *,
    vote_totals: np.ndarray | None = None,
) -> dict[str, object]:
    """`issue_type` checked against people (issue 10, part 3).

    What people call each image is `get_people_issue_types`. Precision of a type =
    share of the images given that type that people call so; its base rate = the same
    share among all flagged images (any type), so precision / base rate > 1 means the type
    tells something the flag alone does not.

    Args:
        votes: (N, C) vote counts over the classes (the full crowd, not a visible subset).
        given_labels: (N,) int class indices of the given labels.
        is_label_issue: (N,) bool flags.
        issue_type: (N,) str, values of `fercleaner.scoring.ISSUE_TYPES`.
        vote_totals: (N,) all votes per image when some are no class (FERPlus `unknown`,
            `NF`); default the row sums. A strict majority needs top * 2 > total.

    Returns:
        For `ambiguous` and `mislabeled`: count, precision, base_rate, lift (precision /
        base rate; NaN where undefined), max_lift (1 / base rate: the lift of a perfect
        precision, so a lift target above it cannot be met by any rule); `flagged`;
        `confusion`: per type given, how many images people call ambiguous and mislabeled
        (the 2x2; an image may count in both columns) and neither.
    """
    votes = np.asarray(votes, dtype=np.float64)
    n = len(votes)
    given = np.asarray(given_labels, dtype=np.int64)
    flags = np.asarray(is_label_issue, dtype=bool)
    types = np.asarray(issue_type, dtype=object)
    if votes.ndim != 2 or not len(given) == len(flags) == len(types) == n:
        raise ValueError(
            f"votes must be (N, C) with N = len(given_labels) = len(is_label_issue) = "
            f"len(issue_type); got votes {votes.shape}, {len(given)}, {len(flags)}, {len(types)}"
        )
    people, median = _people_issue_types(votes, given, vote_totals)
    out: dict[str, object] = {"flagged": int(flags.sum()), "median_vote_entropy": median}
    confusion: dict[str, dict[str, int]] = {}
    for name, truth in people.items():
        given_type = flags & (types == name)
        count = int(given_type.sum())
        precision = float(truth[given_type].mean()) if count else float("nan")
        base_rate = float(truth[flags].mean()) if flags.any() else float("nan")
        lift = precision / base_rate if count and base_rate > 0 else float("nan")
        max_lift = 1.0 / base_rate if base_rate > 0 else float("nan")
        out[name] = {
            "count": count,
            "precision": precision,
            "base_rate": base_rate,
            "lift": lift,
            "max_lift": max_lift,
        }
        confusion[name] = {
            "people_ambiguous": int((given_type & people["ambiguous"]).sum()),
            "people_mislabeled": int((given_type & people["mislabeled"]).sum()),
            "neither": int((given_type & ~people["ambiguous"] & ~people["mislabeled"]).sum()),
        }
    out["confusion"] = confusion
    return out


def _normalise(votes: np.ndarray) -> np.ndarray:
    votes = np.asarray(votes, dtype=np.float64)
    return votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-12)
