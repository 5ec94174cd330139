"""Per-sample label quality in [0, 1], low = the given label is suspect (cleanlab's convention)."""

from __future__ import annotations

import numpy as np

from fercleaner.scoring._validation import check_labels_probs

#: Label-quality formulas `get_label_quality` understands.
LABEL_QUALITY_METHODS = ("self_confidence", "normalized_margin")


def get_label_quality(
    labels: np.ndarray, pred_probs: np.ndarray, *, method: str = "self_confidence"
) -> np.ndarray:
    """(N,) label quality of each given label from class probabilities.

    Args:
        labels: (N,) given class indices.
        pred_probs: (N, C) class probabilities.
        method: `self_confidence` = p[given] (ranks best when the model is not
            over-fitted); `normalized_margin` = (p[given] - max other p + 1) / 2, which
            also looks at how strongly another class is preferred.

    Returns:
        (N,) float64 in [0, 1]; low = given label suspect.
    """
    if method not in LABEL_QUALITY_METHODS:
        raise ValueError(
            f"unknown label quality method {method!r}; "
            f"choose one of {', '.join(LABEL_QUALITY_METHODS)}"
        )
    labels, pred_probs = check_labels_probs(labels, pred_probs)
    rows = np.arange(len(labels))
    given = pred_probs[rows, labels]
    if method == "self_confidence":
        return np.clip(given, 0.0, 1.0)
    others = pred_probs.copy()
    others[rows, labels] = -np.inf
    best_other = others.max(axis=1) if pred_probs.shape[1] > 1 else np.zeros(len(labels))
    return np.clip((given - best_other + 1.0) / 2.0, 0.0, 1.0)
