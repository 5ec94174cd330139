"""SCN-style rank regularisation of per-sample confidences within a batch (used by MTAC).

MTAC states "a weighted regularization module ... highlight solid samples and suppress
uncertain ones in every batch"; its closest published relative is SCN (Wang et al.,
CVPR 2020), whose rank regularisation is reproduced here: sort the batch's confidences,
call the top fraction "high" and the rest "low", and ask the two group means to differ
by at least a margin delta_1.
"""

from __future__ import annotations

import math

import torch


def get_rank_margin(batch_size: int) -> float:
    """delta_1 for a batch size: 0.07 at 64 and 0.15 at 1024, linear in log2(batch size).

    Why log-linear: SCN reports 0.07 for batch 64 and 0.15 for batch 1024; larger batches
    sample the confidence distribution's tails better, so the gap between group means
    grows roughly with the log of the batch. Clamped at 0 for tiny batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    slope = (0.15 - 0.07) / (math.log2(1024) - math.log2(64))  # 0.02 per doubling
    return max(0.0, 0.07 + slope * (math.log2(batch_size) - math.log2(64)))


def split_high_low(confidence: torch.Tensor, *, high_ratio: float) -> torch.Tensor:
    """Boolean mask (B,) of the `int(high_ratio * B)` most confident samples (ties by index)."""
    n_high = int(high_ratio * confidence.shape[0])
    mask = torch.zeros_like(confidence, dtype=torch.bool)
    if n_high > 0:
        order = torch.argsort(confidence.detach(), descending=True, stable=True)
        mask[order[:n_high]] = True
    return mask


def rank_regularization(
    confidence: torch.Tensor, *, high_ratio: float = 0.7, margin: float
) -> torch.Tensor:
    """L_rr = max(0, margin - (mean a_high - mean a_low)) over one batch.

    Args:
        confidence: (B,) per-sample confidences a_i in (0, 1).
        high_ratio: fraction of the batch counted as "high" (SCN's beta = 0.7).
        margin: delta_1 (see `get_rank_margin`).

    Returns:
        Scalar; 0 (with a gradient path) when either group would be empty.
    """
    confidence = confidence.float()
    high = split_high_low(confidence, high_ratio=high_ratio)
    n_high = int(high.sum())
    if n_high == 0 or n_high == confidence.shape[0]:
        return confidence.sum() * 0.0
    gap = confidence[high].mean() - confidence[~high].mean()
    return torch.clamp(margin - gap, min=0.0)
