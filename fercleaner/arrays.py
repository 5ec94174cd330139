"""Array helpers every stage shares: the entropy of probability rows and list columns as matrices.

Pure numpy, no torch and no I/O, so methods, scoring, bench and the app can all use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def get_entropy(probs: np.ndarray) -> np.ndarray:
    """(N,) Shannon entropy in nats of each row of (N, C) `probs` (0 log 0 counts as 0).

    Keeps the input's float dtype; higher = less certain.
    """
    return -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)


def get_normalized_entropy(probs: np.ndarray) -> np.ndarray:
    """(N,) entropy / ln C of each row of (N, C) `probs`: 0 = one class certain, 1 = uniform."""
    return get_entropy(probs) / np.log(probs.shape[1])


def to_matrix(
    column: Iterable[Any], *, dtype: Any = np.float64, width: int | None = None
) -> np.ndarray:
    """(N, C) array from a list column (one sequence per row: `pred_probs`, `votes`, `soft_label`).

    Args:
        column: a pandas Series or any iterable of equal-length sequences.
        dtype: element dtype; None keeps the rows' own.
        width: C for an empty column, which has no row to tell it (default 0).

    Returns:
        The rows stacked; shape (0, width) when `column` is empty.
    """
    rows = [np.asarray(row, dtype=dtype) for row in column]
    if not rows:
        return np.zeros((0, width or 0), dtype=dtype)
    return np.stack(rows)


def get_probability_readout(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The scoring readout of plain class probabilities (N, C) for given labels (N,).

    What a model with nothing but a softmax says: the probabilities are both prediction
    and soft label, uncertainty is their normalised entropy, and the given label's
    probability is the label-quality signal (low = suspect).
    """
    return {
        "pred_probs": probs,
        "soft_label": probs,
        "uncertainty": get_normalized_entropy(probs),
        "label_quality_signal": probs[np.arange(len(labels)), labels],
    }
