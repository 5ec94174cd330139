"""Learning-rate schedules as pure functions of the step, so resuming needs no scheduler state."""

from __future__ import annotations

import math


def get_lr(
    step: int, *, base_lr: float, total_steps: int, warmup_steps: int, schedule: str = "cosine"
) -> float:
    """Learning rate for optimizer step `step` (0-based).

    Linear warm-up from base_lr/warmup_steps to base_lr over `warmup_steps`, then
    `cosine` decays to 0 at `total_steps` or `constant` stays at base_lr.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * progress))
