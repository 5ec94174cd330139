"""POI's Prior Inference Network (PIN): face-region crops of one backbone map, each turned
into AU activations and, through the AU prior, into class evidence, fused per sample.

PIN is one of POI's two networks (the other, TRN, is a plain head in `poi.py`); it lives
here so the region geometry, the branches and their AU supervision read as one piece.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fercleaner.methods.losses import AuxTargets, masked_bce_with_logits
from fercleaner.methods.poi_losses import prior_evidence
from fercleaner.priors import AU_IDS, FACE_REGIONS, FaceRegion

#: PIN's region branches (branch name -> `priors.FACE_REGIONS` entry), in output order:
#: three overlapping bands of an aligned face and the whole face, each with its AUs.
REGIONS: dict[str, FaceRegion] = {
    "upper": FACE_REGIONS["upper_face"],
    "nose": FACE_REGIONS["mid_face"],
    "mouth": FACE_REGIONS["lower_face"],
    "whole": FACE_REGIONS["whole_face"],
}


def region_slices(region: FaceRegion, height: int, width: int) -> tuple[slice, slice]:
    """Row and column slices of `region`'s box on a (height, width) map, never empty."""
    x0_frac, y0_frac, x1_frac, y1_frac = region.box
    y0 = min(int(math.floor(y0_frac * height)), height - 1)
    y1 = max(y0 + 1, int(math.ceil(y1_frac * height)))
    x0 = min(int(math.floor(x0_frac * width)), width - 1)
    x1 = max(x0 + 1, int(math.ceil(x1_frac * width)))
    return slice(y0, y1), slice(x0, x1)


class RegionBranch(nn.Module):
    """One PIN branch: conv on a crop -> pooled feature -> masked AU activations, residual
    logits, gate."""

    def __init__(
        self,
        in_channels: int,
        dim: int,
        num_classes: int,
        au_mask: torch.Tensor,
        *,
        tau: float,
        drop_rate: float,
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, dim, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(dim),
            nn.ReLU(inplace=True),
        )
        self.drop = nn.Dropout(drop_rate)
        self.au_head = nn.Linear(dim, len(AU_IDS))
        self.residual = nn.Linear(dim, num_classes)
        self.gate = nn.Linear(dim, 1)
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))
        self.register_buffer("au_mask", au_mask, persistent=False)

    def forward(
        self, crop: torch.Tensor, prior: torch.Tensor, *, kappa: float
    ) -> dict[str, torch.Tensor]:
        feat = self.drop(self.conv(crop).mean(dim=(2, 3)))  # (B, D)
        au_logits = self.au_head(feat)  # (B, K)
        au = torch.sigmoid(au_logits.float()) * self.au_mask  # (B, K)
        evidence = prior_evidence(au, prior, tau=self.log_tau.exp(), kappa=kappa)  # (B, C)
        return {
            "logits": evidence + self.residual(feat).float(),
            "au_logits": au_logits,
            "au": au,
            "gate": self.gate(feat).float().squeeze(1),  # (B,)
        }


class PriorInferenceNetwork(nn.ModuleDict):
    """PIN: one `RegionBranch` per `REGIONS` entry, fused by per-sample softmax weights.

    A `ModuleDict` keyed by region name, so its parameters keep the checkpoint keys
    `regions.<name>.*` they had when POI held the branches itself.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        last_channels: int,
        dim: int,
        num_classes: int,
        tau: float,
        drop_rate: float,
        whole_from_last: bool,
    ) -> None:
        """Branches read a map with `in_channels`; with `whole_from_last`, `whole` reads the
        last stage's (`last_channels`)."""
        super().__init__(
            {
                name: RegionBranch(
                    last_channels if name == "whole" and whole_from_last else in_channels,
                    dim,
                    num_classes,
                    torch.tensor([float(au in region.aus) for au in AU_IDS]),
                    tau=tau,
                    drop_rate=drop_rate,
                )
                for name, region in REGIONS.items()
            }
        )
        self.whole_from_last = whole_from_last

    def forward(
        self, feats: list[torch.Tensor], *, region_stage: int, prior: torch.Tensor, kappa: float
    ) -> dict[str, torch.Tensor | list[dict[str, torch.Tensor]]]:
        """Fused and per-region logits from the backbone's stage maps `feats`.

        Returns `pin_logits` (B, C), `region_logits` (B, R, C), `region_weights` (B, R)
        and `branches` (each branch's outputs, in `REGIONS` order).
        """
        fmap = feats[region_stage]  # (B, Cs, H, W)
        height, width = fmap.shape[-2:]
        branches = []
        for name, branch in self.items():
            if name == "whole" and self.whole_from_last:
                crop = feats[-1]
            else:
                rows, cols = region_slices(REGIONS[name], height, width)
                crop = fmap[:, :, rows, cols]
            branches.append(branch(crop, prior, kappa=kappa))
        region_logits = torch.stack([b["logits"] for b in branches], dim=1)  # (B, R, C)
        weights = torch.softmax(torch.stack([b["gate"] for b in branches], dim=1), dim=1)  # (B, R)
        return {
            "pin_logits": (weights.unsqueeze(2) * region_logits).sum(dim=1),  # (B, C)
            "region_logits": region_logits,
            "region_weights": weights,
            "branches": branches,
        }

    def get_au_loss(
        self,
        branches: list[dict[str, torch.Tensor]],
        targets: AuxTargets,
        *,
        au_weight: float,
        weak_au_weight: float,
    ) -> torch.Tensor:
        """AU BCE over the branches, each on the AUs it can see: dataset AUs where a row has
        any (`au_weight`), label-derived ones elsewhere (`weak_au_weight`)."""
        strong_targets, weak_targets = targets.annotated, targets.derived  # (B, K), NaN = none
        nan = torch.full_like(weak_targets, float("nan"))
        total = weak_targets.new_zeros(())
        for module, out in zip(self.values(), branches, strict=True):
            visible = module.au_mask.bool()  # (K,): the AUs this region can see
            strong = masked_bce_with_logits(
                out["au_logits"], torch.where(visible, strong_targets, nan)
            )
            weak_loss = masked_bce_with_logits(
                out["au_logits"], torch.where(visible, weak_targets, nan)
            )
            total = total + au_weight * strong + weak_au_weight * weak_loss
        return total / len(branches)
