"""Per-sample training dynamics: cheap signals read off every training forward pass, per epoch.

For each sample and epoch: the probability of the given label, the max probability,
the margin (given-label probability minus the largest other one, as in AUM), and the
method's per-sample `confidence` when its forward output has one of shape (B,).
The margin averaged over the second half of training forms the `dynamics` scoring source
(mislabeled samples are learned late and keep low margins: Pleiss et al. 2020 AUM;
Swayamdipta et al. 2020 "dataset cartography" for the per-sample mean and variability).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

#: Per-epoch signals, in table column order.
DYNAMICS_SIGNALS = ("given_prob", "max_prob", "margin", "confidence")


class DynamicsAccumulator:
    """Collects per-sample signals on the device during an epoch; stores per-epoch means.

    Device-side accumulation avoids a host sync per step. Samples seen twice in an
    epoch (DDP padding) are averaged.
    """

    def __init__(self, epochs: int, num_samples: int) -> None:
        self.epochs, self.n = epochs, num_samples
        #: signal -> (epochs, N) float32, NaN where a sample was not trained on in an epoch.
        self.per_epoch = {
            k: np.full((epochs, num_samples), np.nan, np.float32) for k in DYNAMICS_SIGNALS
        }
        self._local: dict[str, torch.Tensor] | None = None

    def record(
        self,
        epoch: int,
        index: torch.Tensor,
        logits: torch.Tensor,
        given: torch.Tensor,
        confidence: torch.Tensor | None = None,
    ) -> None:
        """Add a batch: `index` (B,), `logits` (B, C), `given` (B,), optional `confidence` (B,)."""
        if self._local is None:
            device = logits.device
            self._local = {
                k: torch.zeros(self.n, device=device, dtype=torch.float64)
                for k in (*DYNAMICS_SIGNALS, "count", "conf_count")
            }
        probs = F.softmax(logits.float(), dim=1)  # (B,C)
        given_prob = probs.gather(1, given.view(-1, 1)).squeeze(1)  # (B,)
        others = probs.scatter(1, given.view(-1, 1), -1.0)
        local = self._local
        local["given_prob"].index_add_(0, index, given_prob.double())
        local["max_prob"].index_add_(0, index, probs.max(1).values.double())
        local["margin"].index_add_(0, index, (given_prob - others.max(1).values).double())
        local["count"].index_add_(0, index, torch.ones_like(given_prob, dtype=torch.float64))
        if isinstance(confidence, torch.Tensor) and confidence.shape == given_prob.shape:
            local["confidence"].index_add_(0, index, confidence.detach().double())
            local["conf_count"].index_add_(
                0, index, torch.ones_like(given_prob, dtype=torch.float64)
            )

    def finish_epoch(self, epoch: int, reduce: Callable[[np.ndarray], np.ndarray]) -> None:
        """Fold this epoch's sums into per-epoch means; `reduce` sums arrays over DDP ranks."""
        if self._local is None:
            return
        local = {k: v.cpu().numpy() for k, v in self._local.items()}
        self._local = None
        stacked = reduce(np.stack([local[k] for k in (*DYNAMICS_SIGNALS, "count", "conf_count")]))
        sums = dict(zip((*DYNAMICS_SIGNALS, "count", "conf_count"), stacked, strict=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            for key in ("given_prob", "max_prob", "margin"):
                self.per_epoch[key][epoch] = sums[key] / sums["count"]
            self.per_epoch["confidence"][epoch] = sums["confidence"] / sums["conf_count"]

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint."""
        return {k: torch.from_numpy(v.copy()) for k, v in self.per_epoch.items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what `state` returned (older checkpoints' extra keys are ignored)."""
        for key in DYNAMICS_SIGNALS:
            self.per_epoch[key] = state[key].numpy().copy()


@dataclass(frozen=True)
class DynamicsRecord:
    """One fold's per-epoch signals and what names their rows: dynamics.parquet's long
    table (one row per epoch and trained sample), produced an epoch at a time.

    The long table has epochs x N rows and takes several times the memory of the
    signals it comes from, so a run keeps these and writes the table one epoch per
    Parquet row group (`fercleaner.runs.write_run_tables`; figures in
    docs/benchmarks.md, "Scale").
    """

    per_epoch: dict[str, np.ndarray]
    """Signal -> (epochs, N) float32, NaN where a sample was not trained on in an epoch."""
    sample_ids: np.ndarray
    """(N,) the rows' sample ids."""
    method: str
    fold: int

    def tables(self) -> Iterator[pd.DataFrame]:
        """The long table's rows of each epoch that trained any sample, in epoch order."""
        for epoch in range(len(self.per_epoch["given_prob"])):
            rows = np.flatnonzero(np.isfinite(self.per_epoch["given_prob"][epoch]))
            if len(rows):
                yield self._table(np.full(len(rows), epoch), rows)

    def table(self) -> pd.DataFrame:
        """The whole long table at once (for callers that want a frame; a run does not)."""
        epoch, row = np.nonzero(np.isfinite(self.per_epoch["given_prob"]))
        return self._table(epoch, row)

    def _table(self, epoch: np.ndarray, row: np.ndarray) -> pd.DataFrame:
        table = pd.DataFrame(
            {
                "method": pd.Series([self.method] * len(row), dtype=str),
                "fold": np.full(len(row), self.fold, dtype=np.int32),
                "epoch": epoch.astype(np.int32),
                "sample_id": pd.Series(np.asarray(self.sample_ids)[row], dtype=str),
            }
        )
        for key in DYNAMICS_SIGNALS:
            table[key] = self.per_epoch[key][epoch, row]
        return table


def get_dynamics_table(
    dynamics: DynamicsAccumulator, *, sample_ids: np.ndarray, method: str, fold: int
) -> pd.DataFrame:
    """Long table, one row per (epoch, trained sample): method, fold, epoch, sample_id, signals."""
    return DynamicsRecord(dynamics.per_epoch, sample_ids, method, fold).table()


def get_dynamics_readout(
    dynamics: DynamicsAccumulator,
) -> dict[str, np.ndarray]:
    """The `dynamics` scoring source: a ranking signal, not a prediction.

    `label_quality_signal` = (1 + late AUM) / 2, where late AUM is the mean margin (given
    probability minus the largest other) over the second half of the epochs trained: the
    first half's margins are those of a network still learning and ranked worse than the
    final model on every FERPlus run measured (docs/benchmarks.md, "Training dynamics"),
    while the second half averages snapshots of a trained network before its last epochs
    memorise the given labels. The source carries no `pred_probs`, `soft_label` or
    `uncertainty`: training-mode probabilities of augmented images would blur the model's
    predictions, proposals and soft labels, so it re-orders suspects and nothing else.
    Method columns: `given_prob_mean`, `given_prob_std` (variability), `margin_mean` (AUM
    over all epochs), `margin_late`, `confidence_mean`. Samples never trained on (outside
    `data.splits`) get NaN: the source does not speak for them, and the combination ranks
    them by the method alone (`combine_sources`), since an eval-mode margin of an unseen
    image is not on the scale of a training-mode one.
    """
    given = dynamics.per_epoch["given_prob"]
    margin = dynamics.per_epoch["margin"]
    late = margin[get_late_epochs(margin)]
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = {
            "given_prob_mean": _nanmean(given),
            "given_prob_std": _nanstd(given),
            "margin_mean": _nanmean(margin),
            "margin_late": _nanmean(late),
            "confidence_mean": _nanmean(dynamics.per_epoch["confidence"]),
        }
    return {
        "label_quality_signal": np.clip((1.0 + columns["margin_late"]) / 2.0, 0.0, 1.0).astype(
            np.float32
        ),
        **{k: v.astype(np.float32) for k, v in columns.items()},
    }


def get_late_epochs(per_epoch: np.ndarray) -> slice:
    """The second half of the epochs that hold any value (all of them when only one does)."""
    recorded = np.flatnonzero(np.isfinite(per_epoch).any(axis=1))
    if len(recorded) == 0:
        return slice(0, 0)
    count = len(recorded)
    return slice(int(recorded[count // 2]) if count > 1 else int(recorded[0]), recorded[-1] + 1)


def _nanmean(a: np.ndarray) -> np.ndarray:
    count = np.isfinite(a).sum(axis=0)
    total = np.nansum(a, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanstd(a: np.ndarray) -> np.ndarray:
    mean = _nanmean(a)
    count = np.isfinite(a).sum(axis=0)
    sq = np.nansum((a - mean) ** 2, axis=0)
    return np.where(count > 0, np.sqrt(sq / np.maximum(count, 1)), np.nan)
