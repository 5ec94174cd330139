"""One model's training loop: setup, flat epochs of method-agnostic steps, a checkpoint per epoch.

The method returns its loss dict; this loop does devices, autocast, stepping, the
learning-rate schedule, DDP sharding, checkpoints and progress, with no method-specific
branch. Every random draw of an epoch comes from (seed, fold, epoch), so a resumed epoch
replays exactly whatever ran before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fercleaner.config import Recipe, TrainConfig, method_options
from fercleaner.errors import DatasetError, TrainingDivergedError
from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.registry import create_method
from fercleaner.training.augment import augment_batch, to_model_input
from fercleaner.training.checkpoint import load_checkpoint, save_checkpoint
from fercleaner.training.device import Precision
from fercleaner.training.distributed import DistInfo, all_reduce_sum, barrier, shard_indices
from fercleaner.training.dynamics import DynamicsAccumulator, EpochSignals
from fercleaner.training.progress import Eta, ProgressFn, TrainProgress
from fercleaner.training.schedule import get_lr


@dataclass
class FitJob:
    """Everything one model's training needs besides the data."""

    recipe: Recipe
    method_name: str
    fold: int
    device: torch.device
    precision: Precision
    checkpoint: Path | None
    resume: bool
    expect: dict[str, Any]
    """Checkpoint fields that must match on resume (data fingerprint, recipe)."""
    dist_info: DistInfo
    progress: ProgressFn | None
    timer: Eta


@dataclass
class _State:
    """The mutable pieces of one model's training."""

    method: Method
    model: torch.nn.Module
    """`method`, wrapped in DistributedDataParallel under DDP."""
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    dynamics: DynamicsAccumulator
    steps_per_epoch: int


def fit_model(data, train_idx: np.ndarray, job: FitJob) -> tuple[Method, DynamicsAccumulator, int]:
    """Train one model on `train_idx` of `data` (a trainer.TrainData).

    Returns the trained method, its per-epoch dynamics and the images it stepped on.
    """
    cfg = job.recipe.train
    state = _setup(data, train_idx, job)
    start_epoch = _resume(state, job) if job.resume else 0
    if start_epoch == 0 and job.dist_info.is_main:
        _forget_earlier_run(state, job)
    job.timer.skip(start_epoch * state.steps_per_epoch)
    given = torch.from_numpy(data.labels).to(job.device)  # (N,)
    seen = 0
    for epoch in range(start_epoch, cfg.epochs):
        seen += _train_epoch(state, data, train_idx, given, epoch, job)
    return state.method, state.dynamics, seen


def get_steps(count: int, batch_size: int) -> int:
    """Optimizer steps for `count` samples; the remainder is spread, never a 1-image batch
    (BatchNorm cannot normalise one image), which also caps the steps at count // 2."""
    if count < batch_size:
        return 1
    return max(1, min(round(count / batch_size), count // 2))


def get_seed(seed: int, fold: int, epoch: int) -> int:
    """The seed of (fold, epoch); epoch -1 seeds the initial weights."""
    return (seed * 1_000_003 + (fold + 1) * 10_007 + (epoch + 1)) % (2**63)


def _setup(data, train_idx: np.ndarray, job: FitJob) -> _State:
    cfg = job.recipe.train
    dist_info = job.dist_info
    local_count = len(
        shard_indices(train_idx, rank=dist_info.rank, world_size=dist_info.world_size)
    )
    if local_count < 2:  # BatchNorm cannot normalise a batch of one image
        per = f"each of {dist_info.world_size} processes" if dist_info.enabled else "the model"
        fold = f" of fold {job.fold}" if job.recipe.train.folds > 1 else ""
        raise DatasetError(
            f"{per} would train on {local_count} image(s){fold}; a batch needs two. Use"
            " fewer processes (--nproc_per_node), fewer train.folds or more training images"
        )
    steps_per_epoch = get_steps(local_count, cfg.batch_size)
    torch.manual_seed(get_seed(cfg.seed, job.fold, -1))  # same initial weights on every rank
    method = create_method(
        job.method_name, _context(data, job.recipe, train_idx, steps_per_epoch, job.method_name)
    )
    method.to(job.device)
    if cfg.channels_last:
        method.to(memory_format=torch.channels_last)
    model: torch.nn.Module = method
    if dist_info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            method,
            device_ids=[job.device.index] if job.device.type == "cuda" else None,
            find_unused_parameters=True,  # methods may skip heads on some steps
        )
    return _State(
        method=method,
        model=model,
        optimizer=_optimizer(method, cfg),
        scaler=torch.amp.GradScaler(job.device.type, enabled=job.precision.use_grad_scaler),
        dynamics=DynamicsAccumulator(len(data.labels), _dynamics_signals(job)),
        steps_per_epoch=steps_per_epoch,
    )


def _dynamics_signals(job: FitJob) -> EpochSignals | None:
    """Where the main rank keeps each epoch's dynamics: files beside the fold's checkpoint
    (`fold<k>.dynamics/`), in memory without one; other DDP ranks keep none."""
    if not job.dist_info.is_main:
        return None
    return EpochSignals(None if job.checkpoint is None else job.checkpoint.with_suffix(".dynamics"))


def _forget_earlier_run(state: _State, job: FitJob) -> None:
    """Delete what an earlier run left in this fold's place: its epoch files and its
    checkpoint, which a `--resume` after a kill in this run's first epoch would otherwise
    continue (without the epoch files it refers to)."""
    if state.dynamics.signals is not None:
        state.dynamics.signals.keep_only([])
    if job.checkpoint is not None:
        job.checkpoint.unlink(missing_ok=True)


def _resume(state: _State, job: FitJob) -> int:
    """Load the fold's checkpoint when there is one; returns the first epoch still to train."""
    if job.checkpoint is None or not job.checkpoint.exists():
        return 0
    saved = load_checkpoint(
        job.checkpoint, expect={"method": job.method_name, "fold": job.fold, **job.expect}
    )
    state.method.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scaler.load_state_dict(saved["scaler"])
    state.method.load_extra_state(saved["extra_state"])
    state.dynamics.load_state(saved["dynamics"])
    torch.set_rng_state(saved["rng"]["torch"])
    return saved["epoch"] + 1


def _train_epoch(
    state: _State, data, train_idx: np.ndarray, given: torch.Tensor, epoch: int, job: FitJob
) -> int:
    """One pass over the model's training samples; returns the images stepped on."""
    cfg, method, dist_info = job.recipe.train, state.method, job.dist_info
    total_steps = state.steps_per_epoch * cfg.epochs
    warmup_steps = round(cfg.warmup_epochs * state.steps_per_epoch)
    method.on_epoch_start(epoch)
    method.train()
    relabeled = method.training_labels()
    labels = given if relabeled is None else relabeled.to(job.device)  # (N,)
    generator = torch.Generator().manual_seed(get_seed(cfg.seed, job.fold, epoch))
    torch.manual_seed(get_seed(cfg.seed, job.fold, epoch))  # dropout and method-internal draws
    order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
    local = shard_indices(order, rank=dist_info.rank, world_size=dist_info.world_size)
    batches = np.array_split(local, get_steps(len(local), cfg.batch_size))
    started, images, loss_value = time.perf_counter(), 0, None
    nonfinite = torch.zeros((), device=job.device)  # steps whose loss was NaN/inf; no sync
    for step, idx in enumerate(batches):
        lr = get_lr(
            epoch * state.steps_per_epoch + step,
            base_lr=cfg.lr,
            total_steps=total_steps,
            warmup_steps=warmup_steps,
            schedule=cfg.schedule,
        )
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        x = to_model_input(torch.from_numpy(data.images[data.rows[idx]]), device=job.device)
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
        index = torch.from_numpy(idx).to(job.device)
        batch = Batch(images=x, labels=labels[index], index=index, given_labels=given[index])
        with job.precision.autocast():
            out = state.model(batch)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(out["loss"].float()).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        nonfinite += (~torch.isfinite(out["loss"].detach().float())).float()
        state.dynamics.record(
            epoch, index, out["logits"].detach(), given[index], out.get("confidence")
        )
        images += len(idx)
        last = step == len(batches) - 1
        if job.progress is not None and dist_info.is_main and (step % 10 == 0 or last):
            loss_value = float(out["loss"].detach())  # a device sync: not every step
            _report(job, epoch, step + 1, len(batches), loss_value, images, started)
    job.timer.done(len(batches))
    nonfinite_steps = float(all_reduce_sum(np.array([float(nonfinite)]), dist_info)[0])
    # fp16's grad scaler skips an overflowing step by design; only an epoch of them diverged
    if not state.scaler.is_enabled() or nonfinite_steps >= len(batches) * dist_info.world_size:
        _check_finite(nonfinite_steps, epoch, job)
    method.on_epoch_end(epoch)
    state.dynamics.finish_epoch(epoch, lambda a: all_reduce_sum(a, dist_info))
    if job.checkpoint is not None and dist_info.is_main:
        _save(state, job, epoch, classes=list(data.classes))
    barrier(dist_info)
    if job.progress is not None and dist_info.is_main:
        _report(job, epoch, len(batches), len(batches), loss_value, images, started, done=True)
    return images


def _check_finite(nonfinite_steps: float, epoch: int, job: FitJob) -> None:
    """Stop at the end of the first epoch whose loss diverged, before it is checkpointed.

    A NaN loss poisons the weights for good: training on would spend the rest of the
    budget and then score every sample with NaN probabilities.
    """
    if nonfinite_steps == 0:
        return
    cfg = job.recipe.train
    raise TrainingDivergedError(
        f"{job.method_name} (fold {job.fold}): the training loss was NaN or infinite in "
        f"{nonfinite_steps:.0f} steps of epoch {epoch + 1}; lower train.lr (now {cfg.lr:g}) "
        "or raise train.warmup_epochs, then run again"
    )


def _save(state: _State, job: FitJob, epoch: int, *, classes: list[str]) -> None:
    """The fold's checkpoint after `epoch`: weights, optimizer, method and dynamics state, RNG."""
    save_checkpoint(
        job.checkpoint,
        {
            **job.expect,
            "method": job.method_name,
            "fold": job.fold,
            "epoch": epoch,
            "classes": classes,
            "model": state.method.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scaler": state.scaler.state_dict(),
            "extra_state": state.method.extra_state(),
            "dynamics": state.dynamics.state(),
            "rng": {"torch": torch.get_rng_state()},
        },
    )


def _report(
    job: FitJob,
    epoch: int,
    step: int,
    steps: int,
    loss: float | None,
    images: int,
    started: float,
    done: bool = False,
) -> None:
    """One progress record: within an epoch, or (`done`) after its checkpoint."""
    cfg = job.recipe.train
    job.progress(
        TrainProgress(
            method=job.method_name,
            phase="train",
            fold=job.fold,
            folds=cfg.folds,
            epoch=epoch,
            epochs=cfg.epochs,
            step=step,
            steps=steps,
            loss=loss,
            images_per_s=images / max(time.perf_counter() - started, 1e-9),
            eta_s=job.timer.eta() if done else job.timer.eta(step),
            epoch_done=done,
        )
    )


def _context(
    data, recipe: Recipe, train_idx: np.ndarray, steps_per_epoch: int, method_name: str
) -> MethodContext:
    """What the method may know; its options come from `config.method_options`."""
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
        options=method_options(recipe.method, method_name),
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
