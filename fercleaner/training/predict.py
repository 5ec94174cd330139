"""Prediction after training: `method.predict` over the samples a model scores, flip-TTA averaged.

Under DDP every rank predicts a strided share and rank 0 gathers the outputs back into
the caller's order.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from fercleaner.config import Recipe
from fercleaner.methods.base import Method
from fercleaner.training.augment import to_model_input
from fercleaner.training.device import Precision
from fercleaner.training.distributed import DistInfo, gather_to_main
from fercleaner.training.progress import ProgressFn, TrainProgress


@torch.no_grad()
def predict_samples(
    method: Method,
    images: np.ndarray,
    rows: np.ndarray,
    eval_idx: np.ndarray,
    recipe: Recipe,
    *,
    precision: Precision,
    dist_info: DistInfo,
    progress: ProgressFn | None,
    fold: int,
) -> dict[str, np.ndarray]:
    """`method.predict` on every sample in `eval_idx` (flip-TTA averaged); full arrays on rank 0.

    Args:
        images: (M, H, W, C) uint8 image store; `rows[i]` is sample i's row in it.
        eval_idx: sample indices to predict; outputs follow this order.
    """
    method.eval()
    device = next(method.parameters()).device
    local = eval_idx[dist_info.rank :: dist_info.world_size]
    batches = np.array_split(local, max(1, math.ceil(len(local) / recipe.score.batch_size)))
    local_out: dict[str, np.ndarray] = {}
    start = time.perf_counter()
    done = 0
    for step, idx in enumerate(batches):
        if len(idx) == 0:
            continue
        x = to_model_input(
            torch.from_numpy(images[rows[idx]]),
            device=device,
            channels_last=recipe.train.channels_last,
        )  # (B,C,H,W)
        with precision.autocast():
            out = method.predict(x)
            if recipe.score.tta_flip:
                mirrored = method.predict(x.flip(3))
                out = {k: _mean_if_float(v, mirrored.get(k)) for k, v in out.items()}
        _put_rows(local_out, {k: _to_numpy(v) for k, v in out.items()}, done, len(local))
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
    gathered = gather_to_main((local, local_out), dist_info)
    if gathered is None:
        return {}
    return _in_caller_order(gathered, eval_idx, n=len(rows))


def _put_rows(
    outputs: dict[str, np.ndarray], batch: dict[str, np.ndarray], start: int, total: int
) -> None:
    """Write a batch's outputs at rows `start:` of `outputs`, allocated (`total` rows) by the
    first batch: one copy of each output, not a list of batches concatenated at the end."""
    if not outputs:
        outputs.update({k: np.empty((total, *v.shape[1:]), v.dtype) for k, v in batch.items()})
    for key, value in batch.items():
        outputs[key][start : start + len(value)] = value


def _in_caller_order(gathered, eval_idx: np.ndarray, *, n: int) -> dict[str, np.ndarray]:
    """Concatenate every rank's (indices, outputs) and reorder the rows to follow `eval_idx`.

    One process predicted `eval_idx` in order: its arrays are returned as they are.
    """
    if len(gathered) == 1 and np.array_equal(gathered[0][0], eval_idx):
        return gathered[0][1]
    order = np.concatenate([idx for idx, _ in gathered])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(len(order))
    keys = next(out for _, out in gathered if out).keys()
    merged = {k: np.concatenate([out[k] for _, out in gathered if out]) for k in keys}
    return {k: v[position[eval_idx]] for k, v in merged.items()}


def _mean_if_float(a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if b is None or not torch.is_floating_point(a) or a.shape != b.shape:
        return a
    return (a.float() + b.float()) / 2


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if torch.is_floating_point(t):
        t = t.float()
    return t.cpu().numpy()
