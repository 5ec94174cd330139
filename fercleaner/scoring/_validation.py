"""Input checks run once, at the public boundary of the scoring functions.

The private numerics behind that boundary can then trust their inputs.
"""

from __future__ import annotations

import numpy as np


def check_labels_probs(
    labels: np.ndarray, probs: np.ndarray, *, name: str = "pred_probs"
) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels int64 (N,), probs float64 (N, C)) or raise ValueError saying what is wrong."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, C); got shape {probs.shape}")
    if labels.ndim != 1 or len(labels) != len(probs):
        raise ValueError(
            f"labels must be 1-D with one entry per row of {name}; "
            f"got labels shape {labels.shape} and {name} shape {probs.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices; got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    num_classes = probs.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(
            f"label index {bad} is outside 0..{num_classes - 1} ({name} has {num_classes} columns)"
        )
    if not np.isfinite(probs).all():
        row = int(np.argwhere(~np.isfinite(probs))[0][0])
        raise ValueError(
            f"{name} row {row} holds NaN or inf; every row must be a probability vector"
        )
    if probs.size and (probs.min() < -1e-6 or probs.max() > 1 + 1e-6):
        raise ValueError(
            f"{name} values must lie in [0, 1]; got range [{probs.min():.4g}, {probs.max():.4g}]"
        )
    return labels, probs


def check_vector(values: np.ndarray, n: int, *, name: str) -> np.ndarray:
    """Return a float64 (n,) copy of `values` or raise ValueError naming `name`."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {values.shape}")
    if not np.isfinite(values).all():
        row = int(np.argwhere(~np.isfinite(values))[0][0])
        raise ValueError(f"{name} row {row} is NaN or inf")
    return values
