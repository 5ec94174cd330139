"""Baseline: cross-entropy on a timm backbone, the reference every method must beat.

Global-average-pooled last stage + linear head. Its `readout` is the base class's:
given-label probability as the label-quality signal, normalised entropy as uncertainty.
Flip-TTA is applied by the trainer around `predict`.

Option `small_loss_fraction` (the shipped recipes set 0.1) leaves the highest-loss
share of every batch out of the loss once `small_loss_start` of training has passed:
co-teaching's small-loss selection (Han et al., NeurIPS 2018) with one network. A
cleaner scores the very samples it trains on; the ones it keeps out are mostly wrong
labels, which then stay unlearned, so their in-sample loss stays high and the
confident-joint counts do not shrink as training goes on. Measured (docs/benchmarks.md):
FERPlus annotator noise at 20 epochs F1 0.464 -> 0.498; synthetic pair flips AP 0.83 ->
0.82, uniform flips 0.959 -> 0.964. The paper ramps the share up over the first epochs and
ties it to the noise rate; a fixed 10% from 40% of training (below every noise rate seen
here) is what was measured, so that is what ships.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.options import BaselineOptions
from fercleaner.methods.registry import register_method
from fercleaner.models import create_backbone


@register_method("baseline", options=BaselineOptions)
class Baseline(Method):
    """Cross-entropy classifier, optionally on each batch's small-loss share (module docstring)."""

    def __init__(self, context: MethodContext) -> None:
        super().__init__(context)
        self.backbone = create_backbone(context.backbone, in_chans=context.in_chans)
        self.dropout = nn.Dropout(context.backbone.drop_rate)
        self.head = nn.Linear(self.backbone.num_features, self.num_classes)
        self._selecting = False

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, num_classes) logits."""
        feature = self.backbone(images)[-1].mean(dim=(2, 3))  # (B, F)
        return self.head(self.dropout(feature))

    def on_epoch_start(self, epoch: int) -> None:
        start = self.options.small_loss_start * self.context.epochs
        self._selecting = self.options.small_loss_fraction > 0 and epoch >= start

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.logits(batch.images)  # (B, C)
        losses = F.cross_entropy(logits.float(), batch.labels, reduction="none")  # (B,)
        if self.training and self._selecting:
            kept = len(losses) - int(self.options.small_loss_fraction * len(losses))
            losses = torch.topk(losses, max(kept, 1), largest=False, sorted=False).values
        loss = losses.mean()
        return {"loss": loss, "logits": logits, "ce": loss.detach()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"probs": F.softmax(self.logits(images).float(), dim=1)}
