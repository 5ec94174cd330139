"""Training throughput of the full fercleaner trainer vs the same model's raw forward+backward.

The trainer reads uint8 rows from a memmap, augments on the device, records dynamics
and steps the optimizer; "raw" steps the same method on a pre-made random tensor with
the same batch size, precision and memory format (forward, backward, optimizer step).
Steady state only: the first epoch / first steps are warm-up and not counted.
Prints one JSON object. Example:

    .venv/bin/python bench/train_throughput.py --model resnet18 --size 48 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fercleaner.classes import CANONICAL_CLASSES


def _raw_images_per_s(recipe, *, steps: int, classes: tuple[str, ...]) -> float:
    """Forward+backward+step of the baseline method on one random batch, repeated."""
    from fercleaner.methods.base import Batch, MethodContext
    from fercleaner.methods.registry import create_method
    from fercleaner.training.device import resolve_precision

    cfg = recipe.train
    size, b = recipe.data.image_size, cfg.batch_size
    context = MethodContext(
        classes=classes,
        num_samples=b,
        class_counts=(1,) * len(classes),
        in_chans=1,
        image_size=size,
        epochs=1,
        steps_per_epoch=steps,
        backbone=recipe.backbone,
    )
    torch.manual_seed(0)
    method = create_method(recipe.method.name, context)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    method.to(memory_format=memory_format)
    precision = resolve_precision(cfg.precision, torch.device("cpu"))
    optimizer = torch.optim.AdamW(method.parameters(), lr=1e-3)
    x = torch.randn(b, 1, size, size).contiguous(memory_format=memory_format)  # (B,1,H,W)
    batch = Batch(images=x, labels=torch.randint(0, len(classes), (b,)), index=torch.arange(b))

    def step() -> None:
        with precision.autocast():
            loss = method(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * b / (time.perf_counter() - start)


def _pipeline_images_per_s(recipe, *, n: int, classes: tuple[str, ...]) -> float:
    """The trainer on an n-image uint8 memmap; images/s over epochs 2..E (epoch 1 is warm-up)."""
    from fercleaner.training.trainer import TrainData, train_and_score

    size = recipe.data.image_size
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.u8"
        images = np.memmap(path, dtype=np.uint8, mode="w+", shape=(n, size, size, 1))
        images[:] = rng.integers(0, 256, images.shape, dtype=np.uint8)
        images.flush()
        images = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, size, size, 1))
        labels = rng.integers(0, len(classes), n)
        data = TrainData(
            images=images,
            rows=np.arange(n),
            labels=labels,
            train_mask=np.ones(n, bool),
            classes=classes,
            sample_ids=np.array([f"s{i}" for i in range(n)]),
        )
        epoch_end: list[float] = []
        train_and_score(
            data,
            recipe,
            method_name=recipe.method.name,
            progress=lambda p: epoch_end.append(time.perf_counter()) if p.epoch_done else None,
        )
    epochs = len(epoch_end) - 1
    return epochs * n / (epoch_end[-1] - epoch_end[0])


def _overrides(args: argparse.Namespace) -> list[str]:
    """The recipe (defaults + these) both measurements use."""
    return [
        f"backbone.name={args.model}",
        f"data.image_size={args.size}",
        f"train.batch_size={args.batch}",
        f"train.epochs={args.epochs}",
        f"train.precision={args.precision}",
        f"train.num_threads={args.threads}",
        "method.name=baseline",
        "train.augment.erase_prob=0.25",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--n", type=int, default=1536, help="images per epoch in the pipeline run")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating raw/pipeline runs")
    parser.add_argument(
        "--compare-fp32", action="store_true", help="also time raw steps in fp32 (bf16 speedup)"
    )
    args = parser.parse_args()

    from fercleaner.config import load_recipe

    recipe = load_recipe("quick", overrides=_overrides(args))
    if args.threads:
        torch.set_num_threads(args.threads)
    classes = CANONICAL_CLASSES
    steps = args.n // args.batch
    fp32 = load_recipe("quick", overrides=[*_overrides(args), "train.precision=fp32"])
    raw, pipeline, raw_fp32 = [], [], []
    for _ in range(args.repeats):  # alternate, so load from other processes hits all alike
        raw.append(_raw_images_per_s(recipe, steps=steps, classes=classes))
        pipeline.append(_pipeline_images_per_s(recipe, n=args.n, classes=classes))
        if args.compare_fp32:
            raw_fp32.append(_raw_images_per_s(fp32, steps=steps, classes=classes))
    result = {
        "benchmark": "train_throughput",
        "model": args.model,
        "image_size": args.size,
        "batch_size": args.batch,
        "precision": args.precision,
        "threads": torch.get_num_threads(),
        "raw_images_per_s": [round(v, 1) for v in raw],
        "pipeline_images_per_s": [round(v, 1) for v in pipeline],
        "ratio_median": round(float(np.median(pipeline) / np.median(raw)), 3),
    }
    if raw_fp32:
        result["raw_fp32_images_per_s"] = [round(v, 1) for v in raw_fp32]
        result["speedup_vs_fp32_median"] = round(float(np.median(raw) / np.median(raw_fp32)), 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
