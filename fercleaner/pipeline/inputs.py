"""The trainer's inputs: read the dataset, decode it once into the cache, and build `TrainData`.

Samples the cache cannot decode are quarantined (left out, listed with the problems);
nothing is replaced by another sample.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.config import Recipe
from fercleaner.priors import AU_IDS, au_column

#: Called as `progress(done, total)` while images are read or decoded.
CountFn = Callable[[int, int], None]


def read_samples(
    dataset_path: str | Path,
    recipe: Recipe,
    progress: CountFn | None,
    *,
    follow_links: bool = False,
    allow_outside_root: bool = False,
) -> Any:
    """The `Dataset` (`datasets.read_dataset`) in the recipe's layout, images unchecked;
    one without a usable row is refused naming its first problem (`require_samples`)."""
    from fercleaner.datasets import read_dataset

    # no image check here: the cache decodes each image once with the same code and
    # quarantines what fails (`get_usable_samples`), and a warm cache decodes nothing
    dataset = read_dataset(
        dataset_path,
        recipe.data.layout,
        follow_links=follow_links,
        allow_outside_root=allow_outside_root,
        check_images=False,
        progress=progress,
    )
    dataset.require_samples()
    return dataset


def build_sample_cache(
    samples: pd.DataFrame, recipe: Recipe, channels: int, progress: CountFn | None
) -> Any:
    """The decoded-image cache (`fercleaner.cache.build_cache`) at the recipe's image size."""
    from fercleaner.cache import build_cache

    return build_cache(samples, size=recipe.data.image_size, channels=channels, progress=progress)


def resolve_channels(channels: int | str, dataset: Any, *, probe: int = 32) -> int:
    """`auto` -> 1 when every probed image is grey (mode L, or R == G == B), else 3."""
    if channels != "auto":
        return int(channels)
    samples = dataset.samples
    if "pixels" in samples.columns or samples.empty:
        return 1  # pixel-CSV datasets (fer2013) are grey by definition
    from PIL import Image

    step = max(1, len(samples) // probe)
    for path in samples["path"].iloc[::step].head(probe):
        try:
            with Image.open(path) as image:
                if image.mode in ("L", "LA", "I", "I;16", "1", "F"):
                    continue
                rgb = np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.int16)
        except Exception:  # PIL raises many types (OSError, DecompressionBombError, ...)
            continue  # the cache reports undecodable files, naming each one
        if (
            np.abs(rgb[..., 0] - rgb[..., 1]).max() > 8
            or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 8
        ):
            return 3
    return 1


def get_usable_samples(dataset: Any, cache: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples the cache decoded (order kept) and all problems (ingestion + decode)."""
    decoded = set(map(str, cache.sample_ids))
    keep = dataset.samples["sample_id"].astype(str).isin(decoded).to_numpy()
    samples = dataset.samples.loc[keep].reset_index(drop=True)
    frames = [
        f for f in (dataset.problems, getattr(cache, "problems", None)) if f is not None and len(f)
    ]
    problems = pd.concat(frames, ignore_index=True) if frames else dataset.problems.iloc[0:0]
    return samples, problems


def build_train_data(samples: pd.DataFrame, classes: list[str], cache: Any, recipe: Recipe) -> Any:
    """The trainer's `TrainData`: cache rows, label indices, the training mask, AU/VA targets."""
    from fercleaner.training.trainer import TrainData

    index = {name: i for i, name in enumerate(classes)}
    labels = np.array([index[str(v)] for v in samples["given_label"]], dtype=np.int64)
    sample_ids = samples["sample_id"].astype(str).to_numpy()
    au_cols = [au_column(a) for a in AU_IDS]
    au = None
    if any(c in samples.columns for c in au_cols):
        au = np.stack(
            [
                pd.to_numeric(samples[c], errors="coerce").to_numpy(np.float32)
                if c in samples.columns
                else np.full(len(samples), np.nan, np.float32)
                for c in au_cols
            ],
            axis=1,
        )
    va = None
    if "valence" in samples.columns and "arousal" in samples.columns:
        va = np.stack(
            [
                pd.to_numeric(samples[c], errors="coerce").to_numpy(np.float32)
                for c in ("valence", "arousal")
            ],
            axis=1,
        )
    return TrainData(
        images=cache.images,
        rows=np.asarray(cache.rows(sample_ids), dtype=np.int64),
        labels=labels,
        train_mask=samples["split"].astype(str).isin(recipe.data.splits).to_numpy(),
        classes=tuple(classes),
        sample_ids=sample_ids,
        au_targets=au,
        va_targets=va,
    )
