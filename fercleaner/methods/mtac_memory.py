"""MTAC's per-sample memory: what training saw of each sample, the class prototypes, and
the relabels decided from them.

It is bookkeeping, not learning, so it lives apart from the network (`mtac.py`): plain
tensors indexed by `Batch.index` that every DDP rank all-reduces at epoch end (so all
ranks relabel alike) and that checkpoints carry under the same keys as before the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from fercleaner.errors import CheckpointError
from fercleaner.methods.rank_regularization import split_high_low
from fercleaner.methods.relabel import center_similarities, propose_relabels, update_prototypes
from fercleaner.training.distributed import all_reduce_tensor

if TYPE_CHECKING:
    from fercleaner.methods.mtac import MTACOptions


def full_precision(device: torch.device) -> torch.autocast:
    """Autocast off: similarities and sums into float32 state must not round through bf16."""
    return torch.autocast(device_type=device.type, enabled=False)


@dataclass(frozen=True)
class TrainingHistory:
    """What training recorded about the N rows of one readout (NaN / -1 where it has nothing)."""

    confidence_train: np.ndarray
    """(N,) float64: confidence a averaged over the last `confidence_epochs` epochs, or NaN."""
    relabeled_at: np.ndarray
    """(N,) int64: epoch of the row's last relabel, or -1."""
    relabel_to: np.ndarray
    """(N,) int64: class index the row was relabeled to, or -1."""


class SampleMemory:
    """Per-sample and per-class state of one MTAC model.

    Plain tensors, not registered buffers: DDP broadcasts buffers from rank 0, which
    would overwrite each rank's sums. They follow the input's device lazily (`to`).
    """

    #: Tensors a checkpoint carries (`MTAC.extra_state` keys).
    STATE = (
        "given",
        "labels",
        "relabeled_at",
        "prototypes",
        "prototype_valid",
        "confidence_sum",
        "confidence_epochs_seen",
    )
    #: One epoch's sums over training forward passes, all-reduced over ranks at its end.
    EPOCH_SUMS = (
        "epoch_conf",
        "epoch_count",
        "epoch_sims",
        "epoch_logits",
        "proto_sum",
        "proto_n",
    )

    def __init__(
        self, *, num_samples: int, classes: tuple[str, ...], dim: int, options: MTACOptions
    ) -> None:
        """Empty memory for `num_samples` rows, `classes` and `dim`-wide features.

        `options` must be resolved (`MTACOptions.resolve`): warm-up and confidence
        epochs filled in.
        """
        n, c = num_samples, len(classes)
        self.classes = classes
        self.options = options
        self.given = torch.full((n,), -1, dtype=torch.long)
        self.labels = torch.full((n,), -1, dtype=torch.long)
        self.relabeled_at = torch.full((n,), -1, dtype=torch.long)
        self.prototypes = torch.zeros(c, dim)
        self.prototype_valid = torch.zeros(c, dtype=torch.bool)
        self.confidence_sum = torch.zeros(n)
        self.confidence_epochs_seen = torch.zeros(n)
        self.events: list[dict[str, Any]] = []
        self.reset_epoch_sums()

    @property
    def num_samples(self) -> int:
        """Rows in the training table."""
        return len(self.given)

    def reset_epoch_sums(self) -> None:
        """Zero the epoch sums (start of an epoch, or after loading a checkpoint)."""
        n, (c, d) = self.num_samples, self.prototypes.shape
        device = self.prototypes.device
        self.epoch_conf = torch.zeros(n, device=device)
        self.epoch_count = torch.zeros(n, device=device)
        self.epoch_sims = torch.zeros(n, c, device=device)
        self.epoch_logits = torch.zeros(n, c, device=device)
        self.proto_sum = torch.zeros(c, d, device=device)
        self.proto_n = torch.zeros(c, device=device)

    def to(self, device: torch.device) -> None:
        """Move every tensor to `device` (no-op when already there)."""
        if self.prototypes.device == device:
            return
        for name in (*self.STATE, *self.EPOCH_SUMS):
            setattr(self, name, getattr(self, name).to(device))

    # ---- training ----------------------------------------------------------------------

    @torch.no_grad()
    def record(
        self,
        index: torch.Tensor,
        labels: torch.Tensor,
        given: torch.Tensor,
        x: torch.Tensor,
        confidence: torch.Tensor,
        raw_logits: torch.Tensor,
    ) -> None:
        """Add one training batch to the epoch sums, in float32.

        Args:
            index: (B,) rows in the training table.
            labels: (B,) labels trained on; given: (B,) the dataset's labels.
            x: (B, D) global features; confidence: (B,) a; raw_logits: (B, C) unscaled.
        """
        with full_precision(x.device):
            self.given[index] = torch.where(self.given[index] < 0, given, self.given[index])
            self.labels[index] = torch.where(self.labels[index] < 0, labels, self.labels[index])
            z = F.normalize(x.float(), dim=1)  # (B, D)
            self.epoch_conf.index_add_(0, index, confidence)
            self.epoch_count.index_add_(0, index, torch.ones_like(confidence))
            self.epoch_sims.index_add_(0, index, z @ self.prototypes.t())
            self.epoch_logits.index_add_(0, index, raw_logits)
            high = split_high_low(confidence, high_ratio=self.options.high_ratio)
            self.proto_sum.index_add_(0, labels[high], z[high])
            self.proto_n.index_add_(0, labels[high], torch.ones_like(confidence[high]))

    def get_similarities(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) cosine similarity of features `x` (B, D) to each prototype; -1 where none yet."""
        with full_precision(x.device):
            sims = F.normalize(x.float(), dim=1) @ self.prototypes.t()  # (B, C)
        return sims.masked_fill(~self.prototype_valid.unsqueeze(0), -1.0)

    @torch.no_grad()
    def end_epoch(self, epoch: int, *, epochs: int) -> None:
        """All-reduce the epoch sums, average confidences, relabel, then update prototypes."""
        self.all_reduce()
        seen = self.epoch_count > 0
        count = self.epoch_count.clamp(min=1)
        confidence = self.epoch_conf / count
        opts = self.options
        if epoch >= epochs - opts.confidence_epochs:
            self.confidence_sum += torch.where(seen, confidence, torch.zeros_like(confidence))
            self.confidence_epochs_seen += seen.float()
        if opts.relabel and epoch + 1 >= opts.relabel_warmup and bool(self.prototype_valid.any()):
            self._relabel(epoch, confidence=confidence, count=count, seen=seen)
        self.prototypes, self.prototype_valid = update_prototypes(
            self.prototypes,
            self.prototype_valid,
            self.proto_sum,
            self.proto_n,
            momentum=opts.prototype_momentum,
        )

    def _relabel(
        self, epoch: int, *, confidence: torch.Tensor, count: torch.Tensor, seen: torch.Tensor
    ) -> None:
        """Apply the relabel rule (`relabel.propose_relabels`) and log one event per relabel."""
        similarities = center_similarities(
            self.epoch_sims / count.unsqueeze(1), self.labels, rows=seen
        )  # (N, C)
        proposal = propose_relabels(
            confidence=confidence,
            similarities=similarities,
            classifier_argmax=self.epoch_logits.argmax(dim=1),
            labels=self.labels,
            seen=seen,
            prototype_valid=self.prototype_valid,
            high_ratio=self.options.high_ratio,
            margin=self.options.relabel_margin,
        )
        for i in torch.nonzero(proposal.mask).flatten().tolist():
            self.events.append(
                {
                    "index": i,
                    "epoch": epoch,
                    "event": "relabel",
                    "from_label": int(self.labels[i]),
                    "to_label": int(proposal.target[i]),
                    "from_class": self.classes[int(self.labels[i])],
                    "to_class": self.classes[int(proposal.target[i])],
                    "margin": float(proposal.margin[i]),
                }
            )
        self.labels = torch.where(proposal.mask, proposal.target, self.labels)
        self.relabeled_at = torch.where(
            proposal.mask, torch.full_like(self.relabeled_at, epoch), self.relabeled_at
        )

    def all_reduce(self) -> None:
        """Sum the epoch statistics over DDP ranks (labels: max over the -1 'unseen' fill)."""
        for name in self.EPOCH_SUMS:
            all_reduce_tensor(getattr(self, name), op="sum")
        for name in ("given", "labels"):
            all_reduce_tensor(getattr(self, name), op="max")

    # ---- readout -----------------------------------------------------------------------

    def get_history(self, index: np.ndarray, trained_on: np.ndarray) -> TrainingHistory:
        """Training history of readout rows `index` (N,) (training-table rows); only the rows
        with `trained_on` (N,) bool get any, the others NaN / -1."""
        n = len(index)
        history = TrainingHistory(
            confidence_train=np.full(n, np.nan),
            relabeled_at=np.full(n, -1, dtype=np.int64),
            relabel_to=np.full(n, -1, dtype=np.int64),
        )
        rows = np.asarray(index, dtype=np.int64)[trained_on]
        epochs_seen = self.confidence_epochs_seen.cpu().numpy()[rows]
        sums = self.confidence_sum.cpu().numpy()[rows]
        history.confidence_train[trained_on] = np.where(
            epochs_seen > 0, sums / np.maximum(epochs_seen, 1), np.nan
        )
        relabeled_at = self.relabeled_at.cpu().numpy()[rows]
        history.relabeled_at[trained_on] = relabeled_at
        history.relabel_to[trained_on] = np.where(
            relabeled_at >= 0, self.labels.cpu().numpy()[rows], -1
        )
        return history

    # ---- checkpoints -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The `STATE` tensors (CPU copies) and the relabel events."""
        state: dict[str, Any] = {
            name: getattr(self, name).detach().cpu().clone() for name in self.STATE
        }
        state["events"] = [dict(event) for event in self.events]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`; shapes must match this run's samples and classes."""
        device = self.prototypes.device
        for name in self.STATE:
            if name not in state:
                raise CheckpointError(
                    f"MTAC checkpoint state lacks {name!r}; it was not written by this version"
                    " of MTAC. Start a fresh run without --resume."
                )
            value = torch.as_tensor(state[name])
            current = getattr(self, name)
            if value.shape != current.shape:
                raise CheckpointError(
                    f"MTAC checkpoint {name!r} has shape {tuple(value.shape)}, this run needs"
                    f" {tuple(current.shape)} (different dataset or classes?). Start a fresh run"
                    " without --resume."
                )
            setattr(self, name, value.to(device=device, dtype=current.dtype).clone())
        self.events = [dict(event) for event in state.get("events", [])]
        self.reset_epoch_sums()
