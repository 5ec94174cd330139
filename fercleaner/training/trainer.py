"""The trainer's front door: train one registered method per fold, predict every sample, merge.

The pieces live beside it: `loop` trains one model, `predict` scores samples with it,
`crossfit` decides which model sees which samples and merges their readouts. With one
fold the model predicts its own training samples and the per-epoch training dynamics
become an extra scoring source named `dynamics`; the method's readout is told which rows
its model trained on (`outputs["trained_on"]`), so it never has to guess.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from fercleaner.config import Recipe
from fercleaner.runs.layout import CHECKPOINTS_DIR
from fercleaner.training.budget import resolve_train_budget
from fercleaner.training.checkpoint import get_checkpoint_recipe, get_data_fingerprint
from fercleaner.training.crossfit import assign_folds, get_fold_indices, merge_readouts
from fercleaner.training.device import resolve_device, resolve_precision, set_thread_count
from fercleaner.training.distributed import DistInfo, gather_to_main
from fercleaner.training.dynamics import DynamicsRecord, get_dynamics_readout
from fercleaner.training.loop import FitJob, fit_model, get_steps
from fercleaner.training.predict import predict_samples
from fercleaner.training.progress import Eta, ProgressFn, TrainProgress

__all__ = ["ProgressFn", "TrainData", "TrainProgress", "TrainResult", "train_and_score"]


@dataclass
class TrainData:
    """The samples to train on and score, every array aligned to rows of the sample table (N)."""

    images: np.ndarray
    """(M, H, W, C) uint8 decoded images (the cache memmap); `rows` index into it."""
    rows: np.ndarray
    """(N,) int64: image row of each sample."""
    labels: np.ndarray
    """(N,) int64: given label index into `classes`."""
    train_mask: np.ndarray
    """(N,) bool: samples the models train on (all are predicted)."""
    classes: tuple[str, ...]
    """Ordered class names."""
    sample_ids: np.ndarray
    """(N,) str: stable ids, for dynamics/events tables and checkpoint fingerprints."""
    au_targets: np.ndarray | None = None
    """(N, len(AU_IDS)) float32 in [0, 1] with NaN where missing, or None."""
    va_targets: np.ndarray | None = None
    """(N, 2) float32 in [-1, 1] with NaN where missing, or None."""


@dataclass
class TrainResult:
    """What one method's training produced (complete on rank 0 only)."""

    method: str
    readout: dict[str, np.ndarray]
    """The method's `readout` over all N samples (cross-fitted when folds > 1)."""
    dynamics_readout: dict[str, np.ndarray] | None
    """Training-dynamics source in readout shape (folds == 1 only), else None."""
    dynamics_records: list[DynamicsRecord]
    """Per fold, the per-epoch signals behind dynamics.parquet's long table. With a
    `run_dir` they are the epoch files under its checkpoints, read when the table is
    asked for: a later run in the same folder replaces them."""
    events: pd.DataFrame
    """Method events (e.g. relabels) with method, fold, sample_id."""
    seconds: float
    images_trained: int
    precision: str
    device: str

    def dynamics_table(self) -> pd.DataFrame:
        """The long table (method, fold, epoch, sample_id, the per-epoch signals), built
        whole on each call (epochs x N rows); a run writes it an epoch at a time
        (`iter_dynamics_tables`)."""
        tables = [record.table() for record in self.dynamics_records]
        return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()

    def iter_dynamics_tables(self) -> Iterator[pa.Table]:
        """The long table, an epoch of one fold at a time (memory: one epoch's rows)."""
        for record in self.dynamics_records:
            yield from record.arrow_tables()


def train_and_score(
    data: TrainData,
    recipe: Recipe,
    *,
    method_name: str,
    run_dir: str | Path | None = None,
    resume: bool = False,
    dist_info: DistInfo | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult | None:
    """Train `method_name` on `data` per `recipe` and read out scores for every sample.

    Checkpoints go to `run_dir/checkpoints/<method>/fold<k>.pt` after every epoch;
    `resume=True` continues from them. Returns None on non-zero DDP ranks.
    """
    dist_info = dist_info or DistInfo()
    # `train.epochs: auto` from an API caller (the pipeline resolves it before this)
    recipe = resolve_train_budget(recipe, n_train=int(data.train_mask.sum()))
    cfg = recipe.train
    set_thread_count(cfg.num_threads)
    device = resolve_device(cfg.device, local_rank=dist_info.local_rank)
    precision = resolve_precision(cfg.precision, device)
    n = len(data.labels)
    assignment = assign_folds(data.labels, data.train_mask, folds=cfg.folds, seed=cfg.seed)
    fingerprint = get_data_fingerprint(data.sample_ids, data.labels, data.train_mask)
    start = time.perf_counter()
    timer = Eta(total_steps=_total_train_steps(data, recipe, dist_info))

    fold_readouts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    dynamics_records: list[DynamicsRecord] = []
    event_tables = []
    dynamics_readout = None
    images_trained = 0
    for fold in range(cfg.folds):
        train_idx, eval_idx = get_fold_indices(
            assignment, data.train_mask, fold=fold, folds=cfg.folds
        )
        job = FitJob(
            recipe=recipe,
            method_name=method_name,
            fold=fold,
            device=device,
            precision=precision,
            checkpoint=(
                Path(run_dir) / CHECKPOINTS_DIR / method_name / f"fold{fold}.pt"
                if run_dir
                else None
            ),
            resume=resume,
            expect={"fingerprint": fingerprint, "recipe": get_checkpoint_recipe(recipe)},
            dist_info=dist_info,
            progress=progress,
            timer=timer,
        )
        method, dynamics, seen = fit_model(data, train_idx, job)
        images_trained += seen
        outputs = predict_samples(
            method,
            data.images,
            data.rows,
            eval_idx,
            recipe,
            precision=precision,
            dist_info=dist_info,
            progress=progress,
            fold=fold,
        )
        events = gather_to_main(method.events(), dist_info)
        if not dist_info.is_main:
            continue
        # which rows of the sample table (Batch.index space) the readout sees, and which of
        # them its model stepped on (in-sample) rather than predicted unseen
        outputs["index"] = eval_idx
        outputs["trained_on"] = np.isin(eval_idx, train_idx)
        fold_readouts.append((eval_idx, method.readout(outputs, data.labels[eval_idx])))
        dynamics_records.append(
            DynamicsRecord(dynamics.signals, data.sample_ids, method_name, fold)
        )
        event_tables.append(_events_table(events, data.sample_ids, method_name, fold))
        if cfg.folds == 1:
            dynamics_readout = get_dynamics_readout(dynamics)
    if not dist_info.is_main:
        return None
    return TrainResult(
        method=method_name,
        readout=merge_readouts(fold_readouts, n),
        dynamics_readout=dynamics_readout,
        dynamics_records=dynamics_records,
        events=pd.concat(event_tables, ignore_index=True),
        seconds=time.perf_counter() - start,
        images_trained=images_trained * dist_info.world_size,
        precision=precision.name,
        device=str(device),
    )


def _events_table(
    gathered: list[list[dict[str, Any]]] | None, sample_ids: np.ndarray, method: str, fold: int
) -> pd.DataFrame:
    rows = [event for events in gathered or [] for event in events]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(
            {
                "method": pd.Series(dtype=str),
                "fold": pd.Series(dtype="int64"),
                "sample_id": pd.Series(dtype=str),
                "index": pd.Series(dtype="int64"),
                "epoch": pd.Series(dtype="int64"),
            }
        )
    table.insert(0, "sample_id", sample_ids[table["index"].to_numpy(dtype=np.int64)])
    table.insert(0, "fold", fold)
    table.insert(0, "method", method)
    return table


def _total_train_steps(data: TrainData, recipe: Recipe, dist_info: DistInfo) -> int:
    """Optimizer steps of the whole run (every fold), for the ETA."""
    cfg = recipe.train
    n_train = int(data.train_mask.sum())
    per_fold = n_train if cfg.folds == 1 else n_train * (cfg.folds - 1) // cfg.folds
    per_rank = -(-per_fold // dist_info.world_size)
    return get_steps(per_rank, cfg.batch_size) * cfg.epochs * cfg.folds
