"""Regional patches of a feature map: roi crops of face regions, gate-weighted pooling, gate margin.

UAPL (after pACNN and RAN, Wang et al. TIP 2020) crops a mid-level feature map into
facial regions, weights each region by a sigmoid gate and pools them. Without landmarks
the regions are fixed boxes of an aligned face (`fercleaner.priors.FACE_REGIONS`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fercleaner.priors import FACE_REGIONS


def get_region_boxes(names: tuple[str, ...]) -> torch.Tensor:
    """(R, 4) float tensor of the fractional (x0, y0, x1, y1) boxes of `FACE_REGIONS[names]`."""
    return torch.tensor([FACE_REGIONS[name].box for name in names], dtype=torch.float32)


def choose_patch_stage(stage_reductions: list[int], *, image_size: int, min_side: int = 6) -> int:
    """Index of the deepest stage, excluding the last, whose map is at least `min_side` px.

    The last stage is the global branch, so patches come from an earlier one. Six pixels
    is the smallest map on which a brow/eye box (~45% wide) still spans more than two
    cells; at 48 px ResNet-18 this is layer2 (6x6), at 112-224 px layer3 (7x7-14x14), the
    layer methods.md names. Falls back to the shallowest stage if none is large enough.
    """
    sides = [-(-image_size // r) for r in stage_reductions]  # ceil, as strided convs give
    for stage in range(len(sides) - 2, -1, -1):
        if sides[stage] >= min_side:
            return stage
    return 0


def crop_regions(feature_map: torch.Tensor, boxes: torch.Tensor, *, size: int) -> torch.Tensor:
    """Bilinear roi-align style crops of fractional `boxes` from a (B, C, H, W) map.

    Args:
        feature_map: (B, C, H, W).
        boxes: (R, 4) shared by the batch, or (B, R, 4) per sample (landmark-centred),
            as fractional (x0, y0, x1, y1).
        size: output side; one bilinear sample at the centre of each of size x size bins.

    Returns:
        (B, R, C, size, size).
    """
    b, c, _, _ = feature_map.shape
    if boxes.dim() == 2:
        boxes = boxes[None].expand(b, -1, -1)
    r = boxes.shape[1]
    steps = (torch.arange(size, device=feature_map.device, dtype=feature_map.dtype) + 0.5) / size
    x0, y0, x1, y1 = boxes.to(feature_map).unbind(-1)  # each (B, R)
    xs = x0[..., None] + (x1 - x0)[..., None] * steps  # (B, R, size)
    ys = y0[..., None] + (y1 - y0)[..., None] * steps
    # grid_sample wants (x, y) in [-1, 1] with -1 at the left edge of the first pixel
    grid = torch.stack(
        (
            xs[:, :, None, :].expand(b, r, size, size),
            ys[:, :, :, None].expand(b, r, size, size),
        ),
        dim=-1,
    )  # (B, R, size, size, 2)
    grid = grid.reshape(b, r * size, size, 2) * 2 - 1
    crops = F.grid_sample(
        feature_map, grid, mode="bilinear", padding_mode="border", align_corners=False
    )  # (B, C, R*size, size)
    return crops.reshape(b, c, r, size, size).permute(0, 2, 1, 3, 4)


def gated_pool(features: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
    """Gate-weighted mean of region features: sum_r g_r f_r / sum_r g_r.

    Args:
        features: (B, R, D).
        gates: (B, R) in (0, 1).

    Returns:
        (B, D).
    """
    return (gates[..., None] * features).sum(dim=1) / gates.sum(dim=1, keepdim=True).clamp_min(1e-6)


def gate_contrast_margin(
    gates: torch.Tensor, *, margin: float, top_fraction: float = 0.5
) -> torch.Tensor:
    """RAN/SCN-style rank margin on each face's gates: mean max(0, margin - (top - rest)).

    Per sample the gates are sorted; `top` is the mean of the highest `top_fraction` of
    them, `rest` the mean of the others. Without this term the normalised pooling leaves
    the gates free to become uniform (all regions equal, the gates then say nothing about
    occlusion); with it each face must rank its regions by at least `margin`.

    Args:
        gates: (B, R) with R >= 2.

    Returns:
        scalar loss.
    """
    r = gates.shape[1]
    n_top = min(r - 1, max(1, round(r * top_fraction)))
    ordered = gates.sort(dim=1, descending=True).values
    gap = ordered[:, :n_top].mean(dim=1) - ordered[:, n_top:].mean(dim=1)
    return F.relu(margin - gap).mean()


def get_region_certainty(region_logits: torch.Tensor) -> torch.Tensor:
    """1 - H(p_r) / ln C per region: 1 = the region alone is sure, 0 = it says nothing.

    Args:
        region_logits: (B, R, C) from each region's own classifier.

    Returns:
        (B, R) in [0, 1]. Label-free, so a wrong given label does not lower it.
    """
    log_p = F.log_softmax(region_logits.float(), dim=-1)
    entropy = -(log_p.exp() * log_p).sum(dim=-1)
    return (1.0 - entropy / math.log(region_logits.shape[-1])).clamp(0.0, 1.0)


def region_certainty_losses(
    region_logits: torch.Tensor, gates: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-region CE on the training label, and BCE pulling each gate to its region's certainty.

    This is what makes the gates uncertainty-aware: an occluded region cannot tell the
    expression, its classifier stays unsure, and its gate is taught to be low. The
    target is each region's certainty relative to the face's most certain region
    (c_r / max_r c_r), so a face that is hard everywhere (ambiguous, not occluded) keeps
    high gates, and the targets are meaningful from the first steps, before the region
    classifiers are confident. It is detached: the gate follows the region, not the reverse.

    Args:
        region_logits: (B, R, C).
        gates: (B, R) in (0, 1).
        labels: (B,) long.

    Returns:
        (mean region CE, mean gate BCE), both scalars.
    """
    b, r, c = region_logits.shape
    region_ce = F.cross_entropy(
        region_logits.float().reshape(b * r, c), labels.repeat_interleave(r)
    )
    certainty = get_region_certainty(region_logits.detach())  # (B, R)
    target = certainty / certainty.amax(dim=1, keepdim=True).clamp_min(1e-6)
    gate_bce = F.binary_cross_entropy(gates.float().clamp(1e-6, 1 - 1e-6), target)
    return region_ce, gate_bce
