"""The strong plain cross-entropy reference of the bench, trained exactly as issue 14 fixes it.

A reference that shares fercleaner's trainer moves whenever fercleaner's training does, and
a weak schedule makes any cleaner look good. This one is frozen and written out in full:
timm `resnet18` from scratch, 1 channel, 48 px, input (x/255 - 0.5)/0.25; SGD (nesterov,
momentum 0.9, weight decay 5e-4), batch 64, OneCycleLR to 0.05 with 15% warm-up (torch's
defaults otherwise, so momentum cycles 0.85-0.95), 30 epochs; each sample mirrored with
probability 1/2, each batch replicate-padded by 4 px and cropped back at one random offset;
bf16 autocast; prediction = softmax of the mean logits of an image and its mirror.

`python -m fercleaner.bench.plain_reference DATASET --out FILE [--folds K]` writes one
Parquet table (sample_id, given_label, pred_probs) plus FILE.json with the class list, the
recipe and the cost, so the bench can run it as a measured child process and cache it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Version of the reference protocol; bump it when anything below changes (it keys the cache).
PROTOCOL_VERSION = 1

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class PlainRecipe:
    """Every setting of the plain reference (issue 14, "An honest bench first")."""

    backbone: str = "resnet18"
    """timm model name, built from scratch with one input channel."""
    image_size: int = 48
    """Square input side in pixels."""
    epochs: int = 30
    """Passes over the data per model."""
    batch_size: int = 64
    """Samples per SGD step."""
    max_lr: float = 0.05
    """Peak learning rate of the one-cycle schedule."""
    pct_start: float = 0.15
    """Share of the steps spent warming up."""
    momentum: float = 0.9
    """Nesterov momentum (OneCycleLR cycles it between 0.85 and 0.95)."""
    weight_decay: float = 5e-4
    """L2 weight decay of SGD."""
    pad: int = 4
    """Replicate padding before the per-batch random crop."""


def train_plain_model(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    recipe: PlainRecipe,
    seed: int,
    progress: ProgressFn | None = None,
):
    """Train one plain model on uint8 (N, H, W, 1) images; return it in eval mode.

    `labels` are (N,) class indices or (N, C) target distributions (soft labels, trained
    with cross-entropy against the distribution); the hard path is the reference's.
    """
    import timm
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    device, autocast = _device_and_autocast()
    model = timm.create_model(
        recipe.backbone, pretrained=False, num_classes=num_classes, in_chans=1
    ).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.max_lr,
        momentum=recipe.momentum,
        nesterov=True,
        weight_decay=recipe.weight_decay,
    )
    steps_per_epoch = math.ceil(len(images) / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=recipe.max_lr,
        total_steps=recipe.epochs * steps_per_epoch,
        pct_start=recipe.pct_start,
    )
    x_all = torch.from_numpy(np.ascontiguousarray(images))  # (N, H, W, 1) uint8
    target_dtype = np.float32 if np.ndim(labels) == 2 else np.int64  # distributions or indices
    y_all = torch.from_numpy(np.array(labels, dtype=target_dtype))  # a writable copy
    size = recipe.image_size
    model.train()
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(x_all), generator=generator)
        total_loss = 0.0
        for start in range(0, len(order), recipe.batch_size):
            index = order[start : start + recipe.batch_size]
            x = _to_input(x_all[index]).to(device)  # (B, 1, H, W)
            mirror = torch.rand(len(index), generator=generator) < 0.5
            x = torch.where(mirror.view(-1, 1, 1, 1).to(device), x.flip(3), x)
            x = F.pad(x, (recipe.pad,) * 4, mode="replicate")
            dy, dx = torch.randint(0, 2 * recipe.pad + 1, (2,), generator=generator).tolist()
            x = x[:, :, dy : dy + size, dx : dx + size]
            with autocast():
                loss = F.cross_entropy(model(x).float(), y_all[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += float(loss.detach()) * len(index)
        if progress is not None:
            progress(f"epoch {epoch + 1}/{recipe.epochs} loss {total_loss / len(order):.4f}")
    model.eval()
    return model


def predict_flip_averaged(model, images: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """(N, C) softmax of the mean logits of each image and its mirror."""
    import torch

    device, autocast = _device_and_autocast()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = _to_input(
                torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            )
            x = x.to(device)
            with autocast():
                logits = (model(x).float() + model(x.flip(3)).float()) / 2
            out.append(torch.softmax(logits, dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def get_plain_probs(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    recipe: PlainRecipe = PlainRecipe(),
    folds: int = 1,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """(N, C) probabilities: in-sample for `folds=1`, else out-of-fold.

    Out-of-fold: stratified K folds, each model trained with seed + fold.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if folds == 1:
        model = train_plain_model(
            images, labels, num_classes=num_classes, recipe=recipe, seed=seed, progress=progress
        )
        return predict_flip_averaged(model, images)
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((len(labels), num_classes), dtype=np.float64)
    # classes rarer than K get no held-out member in some folds; sklearn warns and copes
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (fit, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):

        def report(line: str, fold: int = fold) -> None:
            if progress is not None:
                progress(f"fold {fold + 1}/{folds} {line}")

        model = train_plain_model(
            images[fit],
            labels[fit],
            num_classes=num_classes,
            recipe=recipe,
            seed=seed + fold,
            progress=report,
        )
        probs[held] = predict_flip_averaged(model, images[held])
    return probs


def _to_input(images):
    """uint8 (B, H, W, 1) -> float32 (B, 1, H, W) scaled as (x/255 - 0.5)/0.25."""
    return (images.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25


def _device_and_autocast():
    """CUDA when present, else CPU; bf16 autocast on both (the protocol's precision)."""
    import contextlib
    import functools

    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            pass
    except RuntimeError:  # a CPU build without bf16 autocast: plain fp32
        return device, contextlib.nullcontext
    return device, functools.partial(torch.autocast, device.type, dtype=torch.bfloat16)


def run_plain_reference(
    dataset: str | Path,
    out: str | Path,
    *,
    folds: int = 1,
    seed: int = 0,
    recipe: PlainRecipe = PlainRecipe(),
    progress: ProgressFn | None = None,
) -> Path:
    """Train the plain reference on `dataset`; write `out` (Parquet) + `out`.json; return `out`."""
    import pandas as pd

    from fercleaner.atomic import atomic_path
    from fercleaner.cache import build_cache
    from fercleaner.datasets import read_dataset

    start_wall, start_cpu = time.perf_counter(), time.process_time()
    source = read_dataset(dataset)
    samples = source.samples.reset_index(drop=True)
    cache = build_cache(samples, size=recipe.image_size, channels=1)
    samples = samples[cache.find_cached(samples["sample_id"].astype(str))].reset_index(drop=True)
    images = np.asarray(cache.images[cache.rows(samples["sample_id"].astype(str))])
    index = {name: i for i, name in enumerate(source.classes)}
    labels = samples["given_label"].astype(str).map(index).to_numpy(dtype=np.int64)
    probs = get_plain_probs(
        images,
        labels,
        num_classes=len(source.classes),
        recipe=recipe,
        folds=folds,
        seed=seed,
        progress=progress,
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "sample_id": samples["sample_id"].astype(str),
            "given_label": samples["given_label"].astype(str),
            "pred_probs": list(probs.astype(np.float32)),
        }
    )
    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    meta = {
        "protocol_version": PROTOCOL_VERSION,
        "classes": list(source.classes),
        "recipe": asdict(recipe),
        "folds": folds,
        "seed": seed,
        "samples": len(table),
        "wall_s": time.perf_counter() - start_wall,
        "cpu_s": time.process_time() - start_cpu,
    }
    with atomic_path(out.with_name(out.name + ".json")) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: the bench runs this as a measured child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="dataset folder or manifest (any layout fercleaner reads)")
    parser.add_argument("--out", required=True, help="Parquet file to write")
    parser.add_argument("--folds", type=int, default=1, help="1 = in-sample, K = out-of-fold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=PlainRecipe.epochs)
    args = parser.parse_args(argv)
    run_plain_reference(
        args.dataset,
        args.out,
        folds=args.folds,
        seed=args.seed,
        recipe=PlainRecipe(epochs=args.epochs),
        progress=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":
    main()
