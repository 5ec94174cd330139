"""Progress records the trainer emits, and the remaining-time estimate behind their ETA."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainProgress:
    """One progress report; `phase` is `train` (per step) or `predict` (per batch)."""

    method: str
    phase: str
    fold: int
    folds: int
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float | None
    images_per_s: float
    eta_s: float | None
    epoch_done: bool = False
    """True once per epoch, after its checkpoint is on disk."""


ProgressFn = Callable[[TrainProgress], None]


class Eta:
    """Remaining-time estimate over every fold and epoch, from the measured step rate."""

    def __init__(self, total_steps: int) -> None:
        self.total = total_steps
        self.finished = 0
        self.skipped = 0
        self.start = time.perf_counter()

    def skip(self, steps: int) -> None:
        """Steps a resumed run does not repeat: they count as done but not towards the rate."""
        self.finished += steps
        self.skipped += steps

    def done(self, steps: int) -> None:
        self.finished += steps

    def eta(self, steps_in_epoch: int = 0) -> float | None:
        """Seconds left, given `steps_in_epoch` steps of the running epoch are done."""
        done = self.finished + steps_in_epoch
        ran = done - self.skipped
        if ran <= 0:
            return None
        rate = (time.perf_counter() - self.start) / ran
        return rate * max(0, self.total - done)
