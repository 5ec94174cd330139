"""Learning-rate schedules as pure functions of the step, so resuming needs no scheduler state."""

from __future__ import annotations

import math

#: Schedules `get_lr` knows.
SCHEDULES = ("cosine", "constant", "onecycle")

#: torch OneCycleLR's defaults: start at peak/25, end at peak/(25 * 1e4).
_ONECYCLE_DIV, _ONECYCLE_FINAL_DIV = 25.0, 1e4


def get_lr(
    step: int, *, base_lr: float, total_steps: int, warmup_steps: int, schedule: str = "cosine"
) -> float:
    """Learning rate for optimizer step `step` (0-based).

    `cosine`: linear warm-up from base_lr/warmup_steps to base_lr over `warmup_steps`,
    then cosine decay to 0 at `total_steps`. `constant`: the same warm-up, then base_lr.
    `onecycle`: torch's OneCycleLR (cosine annealing, its default divisors): cosine rise
    from base_lr/25 to base_lr over `warmup_steps`, cosine fall to base_lr/2.5e5 at the
    last step, as the bench's plain reference trains.
    """
    if schedule == "onecycle":
        return _onecycle(step, base_lr=base_lr, total_steps=total_steps, warmup_steps=warmup_steps)
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * progress))


def _onecycle(step: int, *, base_lr: float, total_steps: int, warmup_steps: int) -> float:
    start = base_lr / _ONECYCLE_DIV
    end = start / _ONECYCLE_FINAL_DIV
    peak_step = max(1, warmup_steps) - 1  # torch: float(pct_start * total_steps) - 1
    last_step = total_steps - 1
    if step <= peak_step:
        return _cosine_between(start, base_lr, step / max(peak_step, 1))
    return _cosine_between(
        base_lr, end, min(1.0, (step - peak_step) / max(1, last_step - peak_step))
    )


def _cosine_between(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
