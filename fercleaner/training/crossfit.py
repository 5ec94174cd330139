"""Cross-fitting: which model trains on which samples, and how per-fold readouts become one table.

With one fold the model trains on every training sample and predicts them all
(in-sample). With K folds model k never sees fold k, and predicts it; samples outside the
training splits are predicted by every fold's model and their float readouts averaged.
"""

from __future__ import annotations

import numpy as np


def assign_folds(
    labels: np.ndarray, train_mask: np.ndarray, *, folds: int, seed: int
) -> np.ndarray:
    """(N,) fold of each training sample (stratified by label, seeded); -1 outside training."""
    assignment = np.full(len(labels), -1, dtype=np.int64)
    if folds == 1:
        assignment[train_mask] = 0
        return assignment
    rng = np.random.default_rng(seed)
    offset = 0
    for c in np.unique(labels[train_mask]):
        members = rng.permutation(np.flatnonzero(train_mask & (labels == c)))
        assignment[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)  # rotate so small classes do not all start in fold 0
    return assignment


def get_fold_indices(
    assignment: np.ndarray, train_mask: np.ndarray, *, fold: int, folds: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, eval_idx) of model `fold`: what it steps on and what it predicts."""
    if folds == 1:
        return np.flatnonzero(train_mask), np.arange(len(assignment))
    train_idx = np.flatnonzero(train_mask & (assignment != fold))
    # samples outside the training splits: predicted by every fold's model
    eval_idx = np.union1d(np.flatnonzero(assignment == fold), np.flatnonzero(~train_mask))
    return train_idx, eval_idx


def merge_readouts(
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]], n: int
) -> dict[str, np.ndarray]:
    """Place each fold's readout rows; rows predicted by several folds average (floats)."""
    if len(parts) == 1 and len(parts[0][0]) == n:
        return parts[0][1]
    merged: dict[str, np.ndarray] = {}
    counts = np.zeros(n)
    for idx, _ in parts:
        counts[idx] += 1
    for key in parts[0][1]:
        first = np.asarray(parts[0][1][key])
        is_float = np.issubdtype(first.dtype, np.floating)
        out = np.zeros((n, *first.shape[1:]), dtype=np.float64 if is_float else first.dtype)
        filled = np.zeros(n, dtype=bool)
        for idx, readout in parts:
            values = np.asarray(readout[key])
            if is_float:
                out[idx] += values
            else:
                fresh = ~filled[idx]
                out[idx[fresh]] = values[fresh]
            filled[idx] = True
        if is_float:
            out /= counts.reshape(-1, *([1] * (out.ndim - 1)))
            out = out.astype(first.dtype)
        merged[key] = out
    return merged
