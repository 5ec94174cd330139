"""The training loop: train one registered method (per fold), record dynamics, predict every sample.

The loop is flat and method-agnostic: the method returns its loss dict, the trainer
does devices, autocast, stepping, schedules, checkpoints, DDP sharding and logging.
Cross-fitting (`train.folds > 1`) trains K models, each predicting the samples it
never saw; with one fold the model predicts its own training samples and the
per-epoch training dynamics become an extra scoring source named `dynamics`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fercleaner.config import Recipe, TrainConfig, recipe_to_dict
from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.registry import create_method
from fercleaner.training.augment import augment_batch, to_model_input
from fercleaner.training.checkpoint import get_data_fingerprint, load_checkpoint, save_checkpoint
from fercleaner.training.device import Precision, resolve_device, resolve_precision
from fercleaner.training.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    gather_to_main,
    shard_indices,
)
from fercleaner.training.dynamics import (
    DynamicsAccumulator,
    get_dynamics_readout,
    get_dynamics_table,
)
from fercleaner.training.schedule import get_lr


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


@dataclass
class TrainResult:
    """What one method's training produced (complete on rank 0 only)."""

    method: str
    readout: dict[str, np.ndarray]
    """The method's `readout` over all N samples (cross-fitted when folds > 1)."""
    dynamics_readout: dict[str, np.ndarray] | None
    """Training-dynamics source in readout shape (folds == 1 only), else None."""
    dynamics: pd.DataFrame
    """Long table: method, fold, epoch, sample_id and the per-epoch signals."""
    events: pd.DataFrame
    """Method events (e.g. relabels) with method, fold, sample_id."""
    seconds: float
    images_trained: int
    precision: str
    device: str


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
    cfg = recipe.train
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device, local_rank=dist_info.local_rank)
    precision = resolve_precision(cfg.precision, device)
    n = len(data.labels)
    folds = _assign_folds(data.labels, data.train_mask, folds=cfg.folds, seed=cfg.seed)
    fingerprint = get_data_fingerprint(data.sample_ids, data.labels, data.train_mask)
    start = time.perf_counter()
    timer = _Eta(total_steps=_total_train_steps(data, recipe, dist_info))

    fold_readouts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    dynamics_tables, event_tables = [], []
    dynamics_readout = None
    images_trained = 0
    for fold in range(cfg.folds):
        # One fold trains on every training sample; K folds leave fold k out of model k.
        train_idx = np.flatnonzero(data.train_mask & ((folds != fold) | (cfg.folds == 1)))
        eval_idx = np.flatnonzero(folds == fold) if cfg.folds > 1 else np.arange(n)
        if cfg.folds > 1:  # samples outside the training splits: predicted by every fold's model
            eval_idx = np.union1d(eval_idx, np.flatnonzero(~data.train_mask))
        checkpoint = (
            Path(run_dir) / "checkpoints" / method_name / f"fold{fold}.pt" if run_dir else None
        )
        method, dynamics, seen = _fit(
            data,
            recipe,
            method_name=method_name,
            train_idx=train_idx,
            fold=fold,
            device=device,
            precision=precision,
            checkpoint=checkpoint,
            resume=resume,
            expect={"fingerprint": fingerprint, "recipe": recipe_to_dict(recipe)},
            dist_info=dist_info,
            progress=progress,
            timer=timer,
        )
        images_trained += seen
        outputs = _predict(
            method,
            data,
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
        # `index` tells the readout which rows of the sample table (Batch.index space) it sees.
        outputs["index"] = eval_idx
        fold_readouts.append((eval_idx, method.readout(outputs, data.labels[eval_idx])))
        dynamics_tables.append(
            get_dynamics_table(dynamics, sample_ids=data.sample_ids, method=method_name, fold=fold)
        )
        event_tables.append(_events_table(events, data.sample_ids, method_name, fold))
        if cfg.folds == 1:
            dynamics_readout = get_dynamics_readout(dynamics, fallback=fold_readouts[0][1])
    if not dist_info.is_main:
        return None
    return TrainResult(
        method=method_name,
        readout=_merge_readouts(fold_readouts, n),
        dynamics_readout=dynamics_readout,
        dynamics=pd.concat(dynamics_tables, ignore_index=True),
        events=pd.concat(event_tables, ignore_index=True),
        seconds=time.perf_counter() - start,
        images_trained=images_trained * dist_info.world_size,
        precision=precision.name,
        device=str(device),
    )


def _fit(
    data: TrainData,
    recipe: Recipe,
    *,
    method_name: str,
    train_idx: np.ndarray,
    fold: int,
    device: torch.device,
    precision: Precision,
    checkpoint: Path | None,
    resume: bool,
    expect: dict[str, Any],
    dist_info: DistInfo,
    progress: ProgressFn | None,
    timer: _Eta,
) -> tuple[Method, DynamicsAccumulator, int]:
    """Train one model on `train_idx`; returns it, its dynamics and the images it stepped on."""
    cfg = recipe.train
    n, num_classes = len(data.labels), len(data.classes)
    local_count = len(
        shard_indices(train_idx, rank=dist_info.rank, world_size=dist_info.world_size)
    )
    steps_per_epoch = _steps(local_count, cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)

    torch.manual_seed(_seed(cfg.seed, fold, -1))  # same initial weights on every rank
    method = create_method(
        method_name, _context(data, recipe, train_idx, steps_per_epoch, method_name)
    )
    method.to(device)
    if cfg.channels_last:
        method.to(memory_format=torch.channels_last)
    optimizer = _optimizer(method, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.use_grad_scaler)
    model: torch.nn.Module = method
    if dist_info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            method,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,  # methods may skip heads on some steps
        )
    dynamics = DynamicsAccumulator(cfg.epochs, n, num_classes)
    given = torch.from_numpy(data.labels).to(device)  # (N,)
    start_epoch = 0
    if resume and checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, expect={"method": method_name, "fold": fold, **expect})
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        method.load_extra_state(state["extra_state"])
        dynamics.load_state(state["dynamics"])
        torch.set_rng_state(state["rng"]["torch"])
        start_epoch = state["epoch"] + 1
        timer.skip(start_epoch * steps_per_epoch)

    def report(epoch, step, steps, loss, images, started, epoch_done=False) -> None:
        """One progress record: within an epoch, or (`epoch_done`) after its checkpoint."""
        progress(
            TrainProgress(
                method=method_name,
                phase="train",
                fold=fold,
                folds=cfg.folds,
                epoch=epoch,
                epochs=cfg.epochs,
                step=step,
                steps=steps,
                loss=loss,
                images_per_s=images / max(time.perf_counter() - started, 1e-9),
                eta_s=timer.eta() if epoch_done else timer.eta(step),
                epoch_done=epoch_done,
            )
        )

    seen = 0
    for epoch in range(start_epoch, cfg.epochs):
        method.on_epoch_start(epoch)
        method.train()
        relabeled = method.training_labels()
        labels = given if relabeled is None else relabeled.to(device)  # (N,)
        # Every random draw of this epoch comes from (seed, fold, epoch): a resumed epoch
        # replays exactly, whatever ran before it.
        generator = torch.Generator().manual_seed(_seed(cfg.seed, fold, epoch))
        torch.manual_seed(_seed(cfg.seed, fold, epoch))  # dropout and method-internal draws
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        local = shard_indices(order, rank=dist_info.rank, world_size=dist_info.world_size)
        batches = np.array_split(local, _steps(len(local), cfg.batch_size))
        epoch_start, epoch_images, loss_value = time.perf_counter(), 0, None
        for step, idx in enumerate(batches):
            global_step = epoch * steps_per_epoch + step
            lr = _lr(global_step, cfg, total_steps=total_steps, warmup_steps=warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = to_model_input(torch.from_numpy(data.images[data.rows[idx]]), device=device)
            x = augment_batch(
                x,
                generator=generator,
                flip=cfg.augment.flip,
                shift=cfg.augment.shift,
                erase_prob=cfg.augment.erase_prob,
                erase_max_area=cfg.augment.erase_max_area,
            )  # (B,C,H,W)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            index = torch.from_numpy(idx).to(device)
            batch = Batch(images=x, labels=labels[index], index=index, given_labels=given[index])
            with precision.autocast():
                out = model(batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out["loss"].float()).backward()
            scaler.step(optimizer)
            scaler.update()
            dynamics.record(
                epoch, index, out["logits"].detach(), given[index], out.get("confidence")
            )
            epoch_images += len(idx)
            last = step == len(batches) - 1
            if progress is not None and dist_info.is_main and (step % 10 == 0 or last):
                loss_value = float(out["loss"].detach())  # a device sync: not every step
                report(epoch, step + 1, len(batches), loss_value, epoch_images, epoch_start)
        timer.done(len(batches))
        seen += epoch_images
        method.on_epoch_end(epoch)
        dynamics.finish_epoch(epoch, lambda a: all_reduce_sum(a, dist_info))
        if checkpoint is not None and dist_info.is_main:
            save_checkpoint(
                checkpoint,
                {
                    **expect,
                    "method": method_name,
                    "fold": fold,
                    "epoch": epoch,
                    "classes": list(data.classes),
                    "model": method.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "extra_state": method.extra_state(),
                    "dynamics": dynamics.state(),
                    "rng": {"torch": torch.get_rng_state()},
                },
            )
        barrier(dist_info)
        if progress is not None and dist_info.is_main:
            report(epoch, len(batches), len(batches), loss_value, epoch_images, epoch_start, True)
    return method, dynamics, seen


@torch.no_grad()
def _predict(
    method: Method,
    data: TrainData,
    eval_idx: np.ndarray,
    recipe: Recipe,
    *,
    precision: Precision,
    dist_info: DistInfo,
    progress: ProgressFn | None,
    fold: int,
) -> dict[str, np.ndarray]:
    """`method.predict` on every sample in `eval_idx` (flip-TTA averaged); full arrays on rank 0."""
    method.eval()
    device = next(method.parameters()).device
    local = eval_idx[dist_info.rank :: dist_info.world_size]
    batches = np.array_split(local, max(1, math.ceil(len(local) / recipe.score.batch_size)))
    parts: list[dict[str, np.ndarray]] = []
    start = time.perf_counter()
    done = 0
    for step, idx in enumerate(batches):
        if len(idx) == 0:
            continue
        x = to_model_input(
            torch.from_numpy(data.images[data.rows[idx]]),
            device=device,
            channels_last=recipe.train.channels_last,
        )  # (B,C,H,W)
        with precision.autocast():
            out = method.predict(x)
            if recipe.score.tta_flip:
                mirrored = method.predict(x.flip(3))
                out = {k: _mean_if_float(v, mirrored.get(k)) for k, v in out.items()}
        parts.append({k: _to_numpy(v) for k, v in out.items()})
        done += len(idx)
        if progress is not None and dist_info.is_main:
            elapsed = time.perf_counter() - start
            progress(
                TrainProgress(
                    method=method.name,
                    phase="predict",
                    fold=fold,
                    folds=recipe.train.folds,
                    epoch=recipe.train.epochs - 1,
                    epochs=recipe.train.epochs,
                    step=step + 1,
                    steps=len(batches),
                    loss=None,
                    images_per_s=done / max(elapsed, 1e-9),
                    eta_s=elapsed / (step + 1) * (len(batches) - step - 1),
                )
            )
    local_out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    gathered = gather_to_main((local, local_out), dist_info)
    if gathered is None:
        return {}
    order = np.concatenate([idx for idx, _ in gathered])
    position = np.empty(len(data.labels), dtype=np.int64)
    position[order] = np.arange(len(order))
    keys = next(out for _, out in gathered if out).keys()
    merged = {k: np.concatenate([out[k] for _, out in gathered if out]) for k in keys}
    return {k: v[position[eval_idx]] for k, v in merged.items()}


def _context(
    data: TrainData,
    recipe: Recipe,
    train_idx: np.ndarray,
    steps_per_epoch: int,
    method_name: str,
) -> MethodContext:
    """What the method may know. `method.options` belong to the recipe's `method.name` only:
    the other methods of a `--method all` run (and any method trained from a recipe named
    for another) get their defaults instead of options they would reject."""
    counts = np.bincount(data.labels[train_idx], minlength=len(data.classes))
    return MethodContext(
        classes=tuple(data.classes),
        num_samples=len(data.labels),
        class_counts=tuple(int(c) for c in counts),
        in_chans=int(data.images.shape[-1]),
        image_size=int(data.images.shape[1]),
        epochs=recipe.train.epochs,
        steps_per_epoch=steps_per_epoch,
        backbone=recipe.backbone,
        au_targets=data.au_targets,
        va_targets=data.va_targets,
        options=dict(recipe.method.options) if method_name == recipe.method.name else {},
    )


def _optimizer(method: Method, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; biases and norm weights (1-d parameters) get no weight decay."""
    params = [p for p in method.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _lr(step: int, cfg: TrainConfig, *, total_steps: int, warmup_steps: int) -> float:
    return get_lr(
        step,
        base_lr=cfg.lr,
        total_steps=total_steps,
        warmup_steps=warmup_steps,
        schedule=cfg.schedule,
    )


def _assign_folds(
    labels: np.ndarray, train_mask: np.ndarray, *, folds: int, seed: int
) -> np.ndarray:
    """(N,) fold of each training sample (stratified by label, seeded); -1 outside training."""
    assignment = np.full(len(labels), -1, dtype=np.int64)
    if folds == 1:
        assignment[train_mask] = 0
        return assignment
    rng = np.random.default_rng(seed)
    offset = 0
    for c in np.unique(labels[train_mask]):
        members = rng.permutation(np.flatnonzero(train_mask & (labels == c)))
        assignment[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)  # rotate so small classes do not all start in fold 0
    return assignment


def _merge_readouts(
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]], n: int
) -> dict[str, np.ndarray]:
    """Place each fold's readout rows; rows predicted by several folds average (floats)."""
    if len(parts) == 1 and len(parts[0][0]) == n:
        return parts[0][1]
    merged: dict[str, np.ndarray] = {}
    counts = np.zeros(n)
    for idx, _ in parts:
        counts[idx] += 1
    for key in parts[0][1]:
        first = np.asarray(parts[0][1][key])
        is_float = np.issubdtype(first.dtype, np.floating)
        out = np.zeros((n, *first.shape[1:]), dtype=np.float64 if is_float else first.dtype)
        filled = np.zeros(n, dtype=bool)
        for idx, readout in parts:
            values = np.asarray(readout[key])
            if is_float:
                out[idx] += values
            else:
                fresh = ~filled[idx]
                out[idx[fresh]] = values[fresh]
            filled[idx] = True
        if is_float:
            out /= counts.reshape(-1, *([1] * (out.ndim - 1)))
            out = out.astype(first.dtype)
        merged[key] = out
    return merged


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


def _mean_if_float(a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if b is None or not torch.is_floating_point(a) or a.shape != b.shape:
        return a
    return (a.float() + b.float()) / 2


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if torch.is_floating_point(t):
        t = t.float()
    return t.cpu().numpy()


def _steps(count: int, batch_size: int) -> int:
    """Optimizer steps for `count` samples; the remainder is spread, never a 1-image batch."""
    return max(1, round(count / batch_size)) if count >= batch_size else 1


def _seed(seed: int, fold: int, epoch: int) -> int:
    return (seed * 1_000_003 + (fold + 1) * 10_007 + (epoch + 1)) % (2**63)


def _total_train_steps(data: TrainData, recipe: Recipe, dist_info: DistInfo) -> int:
    cfg = recipe.train
    n_train = int(data.train_mask.sum())
    per_fold = n_train if cfg.folds == 1 else n_train * (cfg.folds - 1) // cfg.folds
    per_rank = -(-per_fold // dist_info.world_size)
    return _steps(per_rank, cfg.batch_size) * cfg.epochs * cfg.folds


class _Eta:
    """Remaining-time estimate over every fold and epoch, from the measured step rate."""

    def __init__(self, total_steps: int) -> None:
        self.total = total_steps
        self.finished = 0
        self.skipped = 0
        self.start = time.perf_counter()

    def skip(self, steps: int) -> None:
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
