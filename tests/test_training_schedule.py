"""The learning-rate schedule is a pure function of the step."""

from __future__ import annotations

import pytest

from fercleaner.training.schedule import get_lr


def test_warmup_then_cosine_to_zero():
    lrs = [get_lr(s, base_lr=1.0, total_steps=100, warmup_steps=10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[55] == pytest.approx(0.5, abs=0.02)
    assert get_lr(100, base_lr=1.0, total_steps=100, warmup_steps=10) == pytest.approx(0.0)


def test_constant_and_no_warmup():
    assert get_lr(0, base_lr=0.3, total_steps=10, warmup_steps=0, schedule="constant") == 0.3
    assert get_lr(9, base_lr=0.3, total_steps=10, warmup_steps=2, schedule="constant") == 0.3
    assert get_lr(0, base_lr=0.3, total_steps=10, warmup_steps=0) == pytest.approx(0.3)
