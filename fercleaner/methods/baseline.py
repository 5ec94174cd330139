"""Baseline: plain cross-entropy on a timm backbone, the reference every method must beat.

Global-average-pooled last stage + linear head. Its `readout` is the base class's:
given-label probability as the label-quality signal, normalised entropy as uncertainty.
Flip-TTA is applied by the trainer around `predict`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.registry import register_method
from fercleaner.models import create_backbone


@register_method("baseline")
class Baseline(Method):
    """Cross-entropy classifier; no options."""

    def __init__(self, context: MethodContext) -> None:
        super().__init__(context)
        self.backbone = create_backbone(context.backbone, in_chans=context.in_chans)
        self.dropout = nn.Dropout(context.backbone.drop_rate)
        self.head = nn.Linear(self.backbone.num_features, self.num_classes)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, num_classes) logits."""
        feature = self.backbone(images)[-1].mean(dim=(2, 3))  # (B, F)
        return self.head(self.dropout(feature))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.logits(batch.images)  # (B, C)
        loss = F.cross_entropy(logits.float(), batch.labels)
        return {"loss": loss, "logits": logits, "ce": loss.detach()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"probs": F.softmax(self.logits(images).float(), dim=1)}
