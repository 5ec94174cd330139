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


def test_onecycle_matches_torch_onecyclelr():
    import torch

    total, warmup = 200, 30  # torch's pct_start 0.15
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.05, momentum=0.9)
    torch_schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.05, total_steps=total, pct_start=warmup / total
    )
    expected = []
    for _ in range(total):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        torch_schedule.step()
    ours = [
        get_lr(s, base_lr=0.05, total_steps=total, warmup_steps=warmup, schedule="onecycle")
        for s in range(total)
    ]
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-12)
