"""Baseline small-loss selection: which samples the loss keeps, when it starts, and its options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.errors import ConfigError
from fercleaner.methods.base import BackboneSpec, Batch, MethodContext
from fercleaner.methods.registry import create_method


def _baseline(**options):
    torch.manual_seed(0)
    context = MethodContext(
        classes=CANONICAL_CLASSES,
        num_samples=8,
        class_counts=(1,) * 8,
        in_chans=1,
        image_size=32,
        epochs=4,
        steps_per_epoch=1,
        backbone=BackboneSpec(name="test_resnet"),
        options=options,
    )
    return create_method("baseline", context)


def _batch() -> Batch:
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(8) % 8
    return Batch(
        images=torch.randn(8, 1, 32, 32, generator=gen),
        labels=labels,
        index=torch.arange(8),
        given_labels=labels,
    )


def test_selection_keeps_the_smallest_losses_after_the_start():
    model = _baseline(small_loss_fraction=0.25, small_loss_start=0.5)
    model.train()
    batch = _batch()
    with torch.no_grad():
        per_sample = F.cross_entropy(
            model.logits(batch.images).float(), batch.labels, reduction="none"
        )
        model.on_epoch_start(1)  # 1 < 0.5 * 4 epochs: every sample counts
        assert model(batch)["loss"].item() == pytest.approx(per_sample.mean().item(), rel=1e-5)
        model.on_epoch_start(2)  # from epoch 2 the 2 highest of 8 losses are left out
        kept = per_sample.sort().values[:6]
        assert model(batch)["loss"].item() == pytest.approx(kept.mean().item(), rel=1e-5)
        model.eval()  # scoring never selects
        eval_losses = F.cross_entropy(
            model.logits(batch.images).float(), batch.labels, reduction="none"
        )
        assert model(batch)["loss"].item() == pytest.approx(eval_losses.mean().item(), rel=1e-5)


def test_no_options_is_plain_cross_entropy():
    model = _baseline()
    model.train()
    batch = _batch()
    model.on_epoch_start(3)
    with torch.no_grad():
        expected = F.cross_entropy(model.logits(batch.images).float(), batch.labels)
        assert model(batch)["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_bad_options_are_all_named():
    with pytest.raises(ConfigError) as caught:
        _baseline(small_loss_fraction=1.5, small_loss_start="late", warmup=3)
    message = str(caught.value)
    assert "method.options.warmup: unknown key" in message
    assert "method.options.small_loss_fraction: expected a number in [0, 1), got 1.5" in message
    assert "method.options.small_loss_start: expected a number in [0, 1), got 'late'" in message
