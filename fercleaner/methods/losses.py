"""Pure loss functions shared by the methods: class balancing, masked multi-label BCE and MSE, CCC,
AU/VA targets for datasets with and without annotations, and the loss-weight ramp.

Every function takes tensors and returns tensors, holds no state and computes in float32
(callers may run the model under bf16 autocast; losses must not). Missing targets are
NaN and are masked out, never imputed. Add to this module only additively: MTAC, UAPL
and POI all import from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


def class_balance_weights(
    counts: Sequence[int] | torch.Tensor, *, power: float = 0.5
) -> torch.Tensor:
    """Per-class loss weights w_c proportional to 1 / n_c**power, normalised to mean 1.

    Why: FER datasets are long-tailed (FERPlus has ~100x more happiness than contempt);
    1/sqrt(n) rebalances without letting a handful of rare samples dominate as 1/n would.
    A class with zero samples is treated as having one (its weight never meets a label
    unless a method relabels into it).

    Returns:
        (C,) float32 weights whose mean is 1.
    """
    n = torch.as_tensor(counts, dtype=torch.float32).clamp(min=1.0)
    weights = n.pow(-power)
    return weights / weights.mean()


def masked_bce_with_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the target entries that are not NaN.

    Args:
        logits: (B, K) raw scores.
        targets: (B, K) soft targets in [0, 1]; NaN = unknown, excluded from the mean.

    Returns:
        Scalar; 0 (with a gradient path) when every target is missing.
    """
    logits = logits.float()
    targets = targets.float()
    valid = ~torch.isnan(targets)
    if not bool(valid.any()):
        return logits.sum() * 0.0
    per = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.where(valid, targets, torch.zeros_like(targets)), reduction="none"
    )
    return (per * valid).sum() / valid.sum()


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the target entries that are not NaN.

    Args:
        pred: (B, K) predictions.
        target: (B, K) targets; NaN = unknown, excluded from the mean.

    Returns:
        Scalar; 0 (with a gradient path) when every target is missing.
    """
    target = target.float()
    valid = ~torch.isnan(target)
    if not bool(valid.any()):
        return pred.sum() * 0.0
    diff = torch.where(valid, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return diff.square().sum() / valid.sum()


def concordance_correlation(
    pred: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-8
) -> torch.Tensor:
    """Lin's concordance correlation coefficient per column, over the rows whose target is not NaN.

    CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2) with population statistics;
    unlike Pearson it also penalises shifted means and scales, which is what a VA
    regressor must get right.

    Args:
        pred: (B, D) predictions.
        target: (B, D) targets, NaN = missing.

    Returns:
        (D,) CCC per column; a column with fewer than 2 valid rows gives NaN.
    """
    pred = pred.float()
    target = target.float()
    valid = ~torch.isnan(target)  # (B, D)
    count = valid.sum(dim=0).float()  # (D,)
    safe_count = count.clamp(min=1.0)
    x = torch.where(valid, pred, torch.zeros_like(pred))
    y = torch.where(valid, target, torch.zeros_like(target))
    mean_x = x.sum(dim=0) / safe_count
    mean_y = y.sum(dim=0) / safe_count
    dx = torch.where(valid, pred - mean_x, torch.zeros_like(pred))
    dy = torch.where(valid, target - mean_y, torch.zeros_like(target))
    var_x = (dx * dx).sum(dim=0) / safe_count
    var_y = (dy * dy).sum(dim=0) / safe_count
    cov = (dx * dy).sum(dim=0) / safe_count
    ccc = 2.0 * cov / (var_x + var_y + (mean_x - mean_y) ** 2 + eps)
    return torch.where(count >= 2, ccc, torch.full_like(ccc, float("nan")))


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over columns of (1 - CCC), skipping columns with fewer than 2 valid rows.

    For valence/arousal this is the usual (1 - CCC_v) + (1 - CCC_a).

    Returns:
        Scalar; 0 (with a gradient path) when no column has 2 valid rows.
    """
    ccc = concordance_correlation(pred, target)
    usable = ~torch.isnan(ccc)
    if not bool(usable.any()):
        return pred.float().sum() * 0.0
    return (1.0 - ccc[usable]).sum()


@dataclass(frozen=True)
class AuxTargets:
    """A batch's AU or VA targets split by where they come from; NaN = no target there."""

    annotated: torch.Tensor
    """(B, K) the dataset's values on rows that have any (NaN entries stay masked); NaN
    elsewhere."""
    derived: torch.Tensor
    """(B, K) the training label's prior row on rows with no annotation; NaN elsewhere."""

    def merged(self) -> torch.Tensor:
        """(B, K) the annotations where a row has any, the label-derived targets elsewhere."""
        return torch.where(torch.isnan(self.derived), self.annotated, self.derived)


def get_aux_targets(
    annotated: torch.Tensor | None, prior: torch.Tensor, labels: torch.Tensor
) -> AuxTargets:
    """AU or VA targets of a batch: dataset annotations where a row has any, else the label's prior.

    A dataset without AU/VA columns (`annotated` None) gets weak targets on every row:
    the AU prototype (`priors.get_au_prior_matrix`) or VA centroid (`get_va_centroids`)
    of the training label. They only echo the (noisy) label, so methods weight them less
    than annotations, or use annotations alone where a dataset has them.

    Args:
        annotated: (B, K) the batch rows of the dataset's targets, NaN = missing; or None.
        prior: (C, K) per-class targets (AU prior matrix or VA centroids).
        labels: (B,) long training labels.
    """
    derived = prior[labels]  # (B, K)
    nan = torch.full_like(derived, float("nan"))
    if annotated is None:
        return AuxTargets(annotated=nan, derived=derived)
    has_any = ~torch.isnan(annotated).all(dim=1, keepdim=True)  # (B, 1)
    return AuxTargets(
        annotated=torch.where(has_any, annotated, nan), derived=torch.where(has_any, nan, derived)
    )


def sigmoid_rampup(done: float, total: float) -> float:
    """Laine & Aila's ramp-up exp(-5 (1 - t)^2) with t = done / total clipped to [0, 1].

    exp(-5) ~ 0.007 at the start, 1 from `done >= total` on; `total <= 0` means no ramp
    (1). Why: a term that leans on the model's own early predictions (a distillation
    teacher, kNN neighbours' distributions) is noise at the start of training, so it is
    trusted only once the network has learned something.
    """
    if total <= 0:
        return 1.0
    t = min(max(float(done) / total, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)
