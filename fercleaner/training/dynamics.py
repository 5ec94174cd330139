"""Per-sample training dynamics: cheap signals read off every training forward pass, per epoch.

For each sample and epoch: the probability of the given label, the max probability,
the margin (given-label probability minus the largest other one, as in AUM), and the
method's per-sample `confidence` when its forward output has one of shape (B,).
The margin averaged over the second half of training forms the `dynamics` scoring source
(mislabeled samples are learned late and keep low margins: Pleiss et al. 2020 AUM;
Swayamdipta et al. 2020 "dataset cartography" for the per-sample mean and variability).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
import torch.nn.functional as F

from fercleaner.atomic import atomic_open
from fercleaner.errors import CheckpointError

#: Per-epoch signals, in table column order.
DYNAMICS_SIGNALS = ("given_prob", "max_prob", "margin", "confidence")
#: dynamics.parquet's long table (text as large_string, the type pandas gave it when the
#: table was built in pandas, so old and new runs are one schema).
DYNAMICS_TABLE_SCHEMA = pa.schema(
    [
        ("method", pa.large_string()),
        ("fold", pa.int32()),
        ("epoch", pa.int32()),
        ("sample_id", pa.large_string()),
        *((key, pa.float32()) for key in DYNAMICS_SIGNALS),
    ]
)


class EpochSignals:
    """Each finished epoch's per-sample signals, kept one epoch per file (or in memory).

    An epochs x N array per signal grows with both (480 bytes a sample per fold at 30
    epochs, 480 MB at 1M images), and a checkpoint that carries it rewrites all of it
    every epoch. With a `folder`, each epoch is one atomically written (signals, N)
    float32 `.npy` file, so the run holds one epoch at a time and a checkpoint only
    names the epochs on disk. Without one (API callers, tests) the epochs stay in memory.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self._in_memory: dict[int, np.ndarray] = {}

    def put(self, epoch: int, values: dict[str, np.ndarray]) -> None:
        """Store `epoch`'s signals: `DYNAMICS_SIGNALS` -> (N,) arrays."""
        stacked = np.stack([np.asarray(values[k], np.float32) for k in DYNAMICS_SIGNALS])
        if self.folder is None:
            self._in_memory[epoch] = stacked
            return
        with atomic_open(self._file(epoch), "wb") as fh:
            np.save(fh, stacked, allow_pickle=False)

    def epochs(self) -> list[int]:
        """The stored epochs, ascending."""
        if self.folder is None:
            return sorted(self._in_memory)
        if not self.folder.is_dir():
            return []
        return sorted(
            int(match[1])
            for path in self.folder.iterdir()
            if (match := _EPOCH_FILE.fullmatch(path.name)) is not None
        )

    def get(self, epoch: int) -> dict[str, np.ndarray]:
        """`epoch`'s signals: `DYNAMICS_SIGNALS` -> (N,) float32, NaN where not trained on."""
        if self.folder is None:
            stacked = self._in_memory[epoch]
        else:
            stacked = np.load(self._file(epoch), allow_pickle=False)
        return dict(zip(DYNAMICS_SIGNALS, stacked, strict=True))

    def keep_only(self, epochs: Iterable[int]) -> None:
        """Drop every stored epoch not in `epochs` (a resumed run's epochs after its checkpoint).

        Raises:
            CheckpointError: an epoch in `epochs` is not stored (its file was deleted).
        """
        wanted, stored = set(epochs), set(self.epochs())
        missing = sorted(wanted - stored)
        if missing:
            raise CheckpointError(
                f"training dynamics of epoch(s) {missing} are missing from {self.folder};"
                " run without --resume (the run's checkpoints need them)."
            )
        for epoch in stored - wanted:
            if self.folder is None:
                del self._in_memory[epoch]
            else:
                self._file(epoch).unlink(missing_ok=True)

    def _file(self, epoch: int) -> Path:
        assert self.folder is not None
        return self.folder / f"epoch{epoch:04d}.npy"


_EPOCH_FILE = re.compile(r"epoch(\d{4,})\.npy")


class DynamicsAccumulator:
    """Collects per-sample signals on the device during an epoch; stores per-epoch means.

    Device-side accumulation avoids a host sync per step. Samples seen twice in an
    epoch (DDP padding) are averaged.
    """

    def __init__(self, num_samples: int, signals: EpochSignals | None = None) -> None:
        """`signals=None` keeps nothing: a DDP rank that only takes part in the reduction."""
        self.n = num_samples
        self.signals = signals
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
        """Store this epoch's per-sample means; `reduce` sums arrays over DDP ranks."""
        if self._local is None:
            return
        local = {k: v.cpu().numpy() for k, v in self._local.items()}
        self._local = None
        stacked = reduce(np.stack([local[k] for k in (*DYNAMICS_SIGNALS, "count", "conf_count")]))
        sums = dict(zip((*DYNAMICS_SIGNALS, "count", "conf_count"), stacked, strict=True))
        if self.signals is None:
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            means = {k: sums[k] / sums["count"] for k in ("given_prob", "max_prob", "margin")}
            means["confidence"] = sums["confidence"] / sums["conf_count"]
        self.signals.put(epoch, means)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint: the epochs stored, and their values unless on disk."""
        if self.signals is None:
            return {"epochs": torch.zeros(0, dtype=torch.int64)}
        epochs = self.signals.epochs()
        state = {"epochs": torch.tensor(epochs, dtype=torch.int64)}
        if self.signals.folder is None:
            state["values"] = torch.from_numpy(
                np.stack([np.stack(list(self.signals.get(e).values())) for e in epochs])
                if epochs
                else np.zeros((0, len(DYNAMICS_SIGNALS), self.n), np.float32)
            )
        return state

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what `state` returned; stored epochs after the checkpoint's are dropped."""
        if self.signals is None:
            return
        epochs = [int(e) for e in state["epochs"]]
        if "values" in state:
            for epoch, values in zip(epochs, state["values"].numpy(), strict=True):
                self.signals.put(epoch, dict(zip(DYNAMICS_SIGNALS, values, strict=True)))
        self.signals.keep_only(epochs)


@dataclass(frozen=True)
class DynamicsRecord:
    """One fold's per-epoch signals and what names their rows: dynamics.parquet's long
    table (one row per epoch and trained sample), produced an epoch at a time.

    The long table has epochs x N rows and takes several times the memory of the
    signals it comes from, so a run keeps these and writes the table one epoch per
    Parquet row group (`fercleaner.runs.write_run_tables`; figures in
    docs/benchmarks.md, "Scale").
    """

    signals: EpochSignals
    sample_ids: np.ndarray
    """(N,) the rows' sample ids."""
    method: str
    fold: int

    def arrow_tables(self) -> Iterator[pa.Table]:
        """The long table's rows of each epoch that trained any sample, in epoch order.

        Arrow, not pandas: a frame of a million Python strings per epoch took twice the
        memory and time of the rest of the bookkeeping (docs/benchmarks.md, "Scale").
        """
        sample_ids = pa.array(np.asarray(self.sample_ids, dtype=object), type=pa.large_string())
        for epoch in self.signals.epochs():
            values = self.signals.get(epoch)
            rows = np.flatnonzero(np.isfinite(values["given_prob"]))
            if len(rows) == 0:
                continue
            columns = {
                "method": np.full(len(rows), self.method, dtype=object),
                "fold": np.full(len(rows), self.fold),
                "epoch": np.full(len(rows), epoch),
                "sample_id": sample_ids.take(pa.array(rows)),
                **{key: np.asarray(values[key])[rows] for key in DYNAMICS_SIGNALS},
            }
            yield pa.table(columns, schema=DYNAMICS_TABLE_SCHEMA)

    def table(self) -> pd.DataFrame:
        """The whole long table at once (for callers that want a frame; a run does not)."""
        parts = list(self.arrow_tables())
        whole = pa.concat_tables(parts) if parts else DYNAMICS_TABLE_SCHEMA.empty_table()
        return whole.to_pandas()


def get_dynamics_readout(dynamics: DynamicsAccumulator) -> dict[str, np.ndarray]:
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

    Reads one epoch at a time (two passes), so memory is a few arrays of N.
    """
    signals = _signals_of(dynamics)
    n = dynamics.n
    mean = {k: _RunningMean(n) for k in ("given_prob", "margin", "confidence")}
    recorded = []
    for epoch in signals.epochs():
        values = signals.get(epoch)
        if np.isfinite(values["given_prob"]).any():
            recorded.append(epoch)
        for key, running in mean.items():
            running.add(values[key])
    late_start = _late_start(recorded)
    spread, late = _RunningMean(n), _RunningMean(n)
    given_mean = mean["given_prob"].value()
    for epoch in recorded:
        values = signals.get(epoch)
        spread.add((values["given_prob"] - given_mean) ** 2)
        if epoch >= late_start:
            late.add(values["margin"])
    columns = {
        "given_prob_mean": given_mean,
        "given_prob_std": np.sqrt(spread.value()),
        "margin_mean": mean["margin"].value(),
        "margin_late": late.value(),
        "confidence_mean": mean["confidence"].value(),
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
    return slice(_late_start(recorded.tolist()), int(recorded[-1]) + 1)


def _late_start(recorded: list[int]) -> int:
    """First late epoch of the `recorded` epochs (ascending): the second half's first."""
    if not recorded:
        return 0
    count = len(recorded)
    return int(recorded[count // 2]) if count > 1 else int(recorded[0])


class _RunningMean:
    """Per-sample mean of arrays added one at a time, NaN entries skipped (NaN if none)."""

    def __init__(self, n: int) -> None:
        self.total = np.zeros(n, np.float64)
        self.count = np.zeros(n, np.int32)

    def add(self, values: np.ndarray) -> None:
        finite = np.isfinite(values)
        self.total += np.where(finite, values, 0.0)
        self.count += finite

    def value(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / np.maximum(self.count, 1), np.nan)


def _signals_of(dynamics: DynamicsAccumulator) -> EpochSignals:
    if dynamics.signals is None:
        raise ValueError("this accumulator keeps no signals (a DDP rank other than the main one)")
    return dynamics.signals
