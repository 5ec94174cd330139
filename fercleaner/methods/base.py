"""The method-trainer contract: a method computes its loss, the trainer owns the loop.

A method is an `nn.Module` built from a `MethodContext`. Training calls `forward(batch)`
and steps on the returned `loss`; scoring calls `predict(images)` on every sample and
then `readout(...)` once to turn the gathered per-sample tensors into score columns.
The trainer has no method-specific `if`: anything a method needs between epochs
(prototype updates, kNN graphs, relabeling) happens in its epoch hooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from fercleaner.arrays import get_probability_readout
from fercleaner.config.recipe import BackboneSpec


@dataclass(frozen=True)
class MethodContext:
    """Everything a method may know about the data it trains on; built once by the trainer."""

    classes: tuple[str, ...]
    """Ordered class names; logits and probabilities use this order."""
    num_samples: int
    """Rows in the training table; `Batch.index` addresses them."""
    class_counts: tuple[int, ...]
    """Given-label count per class in the training table."""
    in_chans: int
    """1 for grayscale datasets, 3 for RGB."""
    image_size: int
    """Square input side in pixels after the cache resize."""
    epochs: int
    """Total training epochs (for ramps and warm-ups)."""
    steps_per_epoch: int
    """Optimizer steps per epoch on this process."""
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    au_targets: np.ndarray | None = None
    """(num_samples, len(AU_IDS)) float32 AU intensities in [0, 1], NaN where missing; None if
    no AU columns."""
    va_targets: np.ndarray | None = None
    """(num_samples, 2) float32 valence/arousal in [-1, 1], NaN where missing; None if no VA
    columns."""
    options: Any = field(default_factory=dict)
    """The method's options: an instance of its registered options dataclass (the trainer
    passes `config.method_options(...)`), or a plain mapping, checked the same way."""


@dataclass
class Batch:
    """One training or scoring batch, already on the device."""

    images: torch.Tensor
    """(B, C, H, W) float, normalised and (for training) augmented."""
    labels: torch.Tensor
    """(B,) long: the label the method trains on (the given label unless the method relabeled)."""
    index: torch.Tensor
    """(B,) long: row of each sample in the training table (stable across epochs)."""
    given_labels: torch.Tensor | None = None
    """(B,) long: the dataset's given label, never changed by relabeling."""


@dataclass(frozen=True)
class NoOptions:
    """The options of a method that takes none: every `method.options` key is unknown."""


class Method(nn.Module):
    """Base class for FER methods. Subclasses set `name` and implement forward/predict."""

    name: ClassVar[str] = ""
    #: Per-sample columns `readout` adds, without the method prefix (for docs and checks).
    signal_columns: ClassVar[tuple[str, ...]] = ()
    #: The frozen options dataclass, set by `register_method(name, options=...)`.
    options_class: ClassVar[type] = NoOptions

    def __init__(self, context: MethodContext) -> None:
        super().__init__()
        self.context = context
        self.num_classes = len(context.classes)
        self.options = self._typed_options(context.options)

    @classmethod
    def _typed_options(cls, options: Any) -> Any:
        """`options` as an instance of `options_class`; a mapping is checked like a recipe's."""
        if isinstance(options, cls.options_class):
            return options
        if isinstance(options, Mapping):
            from fercleaner.config import options_from_dict

            return options_from_dict(cls.options_class, options, source=f"{cls.name} options")
        raise TypeError(
            f"MethodContext.options for {cls.name!r} must be a {cls.options_class.__name__}"
            f" or a mapping, got {type(options).__name__}"
        )

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Return `loss` (scalar), `logits` (B, C) and named scalar terms for logging."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample outputs for scoring: at least `probs` (B, C); any other (B, ...) tensors."""
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each epoch (0-based); ramps and schedules read `epoch` here."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after each epoch; per-epoch state updates (prototypes, graphs, relabels)."""

    def training_labels(self) -> torch.Tensor | None:
        """(num_samples,) long labels to train on next epoch, or None to keep the given labels."""
        return None

    def events(self) -> list[dict[str, Any]]:
        """Per-sample events recorded in training (e.g. relabels), each with `index` and `epoch`."""
        return []

    def readout(
        self, outputs: dict[str, np.ndarray], given_labels: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Turn gathered `predict` outputs (N, ...) into score arrays for the scores contract.

        The trainer adds `outputs["index"]` (N,) int64: the sample-table rows (the
        `Batch.index` space) the arrays belong to; with cross-fitting these are one fold's
        held-out rows, not all rows. It also adds `outputs["trained_on"]` (N,) bool: the
        rows this model stepped on (in-sample), so per-sample training history is read for
        those rows only, never guessed. A direct caller may leave both out.

        Returns a dict with `pred_probs` (N, C), `soft_label` (N, C), `uncertainty` (N,)
        and `label_quality_signal` (N,) in [0, 1] with low = given label suspect, plus
        method columns (unprefixed; the scorer adds `<name>_`).
        """
        return get_probability_readout(outputs["probs"], given_labels)

    def extra_state(self) -> dict[str, Any]:
        """Non-parameter state to checkpoint (EMA prototypes, relabels); tensors or plain data."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_state` returned."""
