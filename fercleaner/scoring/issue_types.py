"""Why a flagged label is suspect: `mislabeled`, `ambiguous` or `outlier` (`none` if unflagged).

Rule, with every cut-off estimated from the data (no hand-picked constant). Per-class
thresholds t_k are estimated on the soft labels exactly as confident learning does on
probabilities (mean soft_label[:, k] over the samples given k), A is the set of classes
a sample's soft label reaches the threshold of, p is the proposed class (the most
probable class other than the given one) and j1, j2 are its two most probable classes.
For a flagged sample:

- `mislabeled`: A is exactly {p}: the evidence concentrates on a single other class,
  the proposed one, so relabel to it;
- `outlier` (otherwise): even the two most probable classes together fall short of the
  typical confidence of the first, s[j1] + s[j2] < t[j1], and its uncertainty is above
  the mean uncertainty of the samples given the same class: low confidence in every
  class, likely out of distribution (occlusion, not a face, bad crop);
- `ambiguous`: everything else: several classes reach their threshold (possibly the
  given one), or the mass is split between a few classes none of which is confident
  on its own, or the sources disagree; keep a soft label.

Proposals: the given label for unflagged samples, p for flagged ones: a flag says the
given label is suspect, so proposing it back would say nothing. Measured on FERPlus
(docs/benchmarks.md), p was right for more caught errors (0.53) than the soft label's
argmax (0.47) or "the one class reaching its threshold" (0.41), which favours classes
with low thresholds.

On simulated scores (7 classes; clean, flipped, two-class ambiguous and flat samples)
the outlier rule keeps `outlier` for the flat samples (137 of 157 flagged outliers)
where the earlier rule "A empty" also called a fifth of the flips outliers.
"""

from __future__ import annotations

import numpy as np

from fercleaner.scoring._validation import check_labels_probs, check_vector
from fercleaner.scoring.thresholds import _thresholds

#: Values of the `issue_type` column.
ISSUE_TYPES = ("mislabeled", "ambiguous", "outlier", "none")


def get_issue_type(
    labels: np.ndarray,
    soft_label: np.ndarray,
    *,
    is_label_issue: np.ndarray,
    uncertainty: np.ndarray,
    thresholds: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) issue type per sample (object array of str from ISSUE_TYPES).

    Args:
        labels: (N,) given class indices.
        soft_label: (N, C) proposed label distribution per sample.
        is_label_issue: (N,) bool flags; unflagged samples get `none`.
        uncertainty: (N,) higher = less certain (any scale: only compared within a class).
        thresholds: (C,) thresholds on the soft labels; estimated from them when None.
    """
    labels, soft_label = check_labels_probs(labels, soft_label, name="soft_label")
    n = len(labels)
    flags = np.asarray(is_label_issue, dtype=bool)
    if flags.shape != (n,):
        raise ValueError(f"is_label_issue must have shape ({n},); got {flags.shape}")
    uncertainty = check_vector(uncertainty, n, name="uncertainty")
    if thresholds is None:
        thresholds = _thresholds(labels, soft_label)
    return _issue_types(labels, soft_label, flags, uncertainty, np.asarray(thresholds, dtype=float))


def _issue_types(
    labels: np.ndarray,
    soft_label: np.ndarray,
    flags: np.ndarray,
    uncertainty: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    num_classes = soft_label.shape[1]
    rows = np.arange(len(labels))
    above = soft_label >= thresholds[None, :]
    proposal = _best_other(labels, soft_label)
    only_proposal = (above.sum(axis=1) == 1) & above[rows, proposal]
    top_two = np.argsort(-soft_label, axis=1, kind="stable")[:, :2]
    first = top_two[:, 0]
    top_two_mass = soft_label[rows, first] + (
        soft_label[rows, top_two[:, 1]] if num_classes > 1 else 0.0
    )
    counts = np.bincount(labels, minlength=num_classes)
    sums = np.bincount(labels, weights=uncertainty, minlength=num_classes)
    class_mean_uncertainty = sums / np.maximum(counts, 1)
    uncertain = uncertainty > class_mean_uncertainty[labels]

    out = np.full(len(labels), "none", dtype=object)
    out[flags] = "ambiguous"
    out[flags & (top_two_mass < thresholds[first]) & uncertain] = "outlier"
    out[flags & only_proposal] = "mislabeled"
    return out


def _best_other(labels: np.ndarray, soft_label: np.ndarray) -> np.ndarray:
    """(N,) the most probable class other than the given one (ties: lowest index)."""
    others = soft_label.copy()
    if soft_label.shape[1] > 1:
        others[np.arange(len(labels)), labels] = -np.inf
    return others.argmax(axis=1)


def propose_labels(
    labels: np.ndarray,
    soft_label: np.ndarray,
    *,
    issue_type: np.ndarray,
) -> np.ndarray:
    """(N,) proposed class index per sample.

    `none` keeps the given label; every flagged type proposes the most probable class
    other than the given one (for `mislabeled` that is the class the evidence
    concentrates on; review and export decide from `issue_type` whether to relabel,
    keep a soft label or drop).
    """
    labels, soft_label = check_labels_probs(labels, soft_label, name="soft_label")
    issue_type = np.asarray(issue_type, dtype=object)
    if issue_type.shape != labels.shape:
        raise ValueError(f"issue_type must have shape {labels.shape}; got {issue_type.shape}")
    unknown = sorted(set(issue_type.tolist()) - set(ISSUE_TYPES))
    if unknown:
        raise ValueError(f"unknown issue types {unknown}; expected {', '.join(ISSUE_TYPES)}")
    proposed = _best_other(labels, soft_label)
    keep = issue_type == "none"
    proposed[keep] = labels[keep]
    return proposed
