"""Write a noisy dataset to disk in the `csv` layout, plus its truth table beside (never inside) it.

Images are *hard-linked* (copied where the file system cannot link) under
`<out>/dataset/<sample_id>` so the noisy dataset's sample_ids equal the source dataset's
(the truth joins without a mapping, reviews of the source still join) and every image is
a plain file inside the dataset root: readers refuse symlinks that leave it. Pixel-CSV
rows (fer2013) have no image file: they are decoded once to
`<out>/dataset/pixels/<row>.png`. Face boxes (AffectNet) are not carried by the csv
layout: such images are benchmarked uncropped.

The `votes` protocol's visible votes become one `votes_<class>` count column per class
(canonical names) in `labels.csv`; `labels_without_votes.csv` beside it lists the same
rows without them (same images, same sample_ids), for scoring without the crowd.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fercleaner.atomic import atomic_path
from fercleaner.bench.protocols import NoisyDataset

#: Columns the csv layout passes through besides path/label/split.
_PASSTHROUGH_PREFIXES = ("valence", "arousal", "au_")
#: The manifest without vote columns, beside `labels.csv` (votes protocol only).
MANIFEST_WITHOUT_VOTES = "labels_without_votes.csv"


def write_noisy_dataset(noisy: NoisyDataset, out: str | os.PathLike[str]) -> Path:
    """Write `<out>/dataset/labels.csv` (+ image links) and `<out>/truth.parquet`.

    Returns the dataset folder, `<out>/dataset`. Every sample is written with split
    `train`: the benchmark cleans one pool, and the source split is kept in the truth
    table as `source_split`.
    """
    out = Path(out)
    folder = out / "dataset"
    table = noisy.samples.copy()
    table["label"] = table["given_label"].astype(str)
    vote_columns = []
    if "visible_votes" in table.columns:
        shown = np.stack(table["visible_votes"].to_list()).astype(np.int64)
        vote_columns = [f"votes_{name}" for name in noisy.classes]
        for i, column in enumerate(vote_columns):
            table[column] = shown[:, i]
    relative_paths = write_labels_csv(folder, table.assign(split="train"), columns=vote_columns)
    if vote_columns:
        manifest = pd.read_csv(folder / "labels.csv", keep_default_na=False)
        manifest.drop(columns=vote_columns).to_csv(folder / MANIFEST_WITHOUT_VOTES, index=False)
    truth = noisy.truth.copy()
    truth["source_sample_id"] = truth["sample_id"]
    truth["sample_id"] = relative_paths
    truth["source_split"] = noisy.samples["split"].astype(str).to_numpy()
    with atomic_path(out / "truth.parquet") as tmp:
        truth.to_parquet(tmp, index=False)
    return folder


def write_labels_csv(
    folder: str | os.PathLike[str], table: pd.DataFrame, *, columns: Sequence[str] = ()
) -> list[str]:
    """Write `folder/labels.csv` for rows with sample_id, path, label, split (+ pixels, VA, AUs).

    `columns` names further columns of `table` to write as they are (vote counts).

    Images are linked (or decoded, for pixel rows) under `folder`; returns each row's
    path relative to `folder`, which the csv reader turns into its sample_id.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    relative_paths = []
    has_pixels = "pixels" in table.columns
    for row in table.itertuples(index=False):
        sample_id = str(row.sample_id)
        if has_pixels and isinstance(getattr(row, "pixels", None), str):
            relative = f"pixels/{sample_id.rsplit('#', 1)[-1]}.png"
            _write_pixels(folder / relative, row.pixels)
        else:
            relative = sample_id
            _link(folder / relative, Path(str(row.path)))
        relative_paths.append(relative)
    manifest = pd.DataFrame(
        {
            "path": relative_paths,
            "label": table["label"].astype(str).to_numpy(),
            "split": table["split"].astype(str).to_numpy(),
        }
    )
    for column in table.columns:
        if column.startswith(_PASSTHROUGH_PREFIXES) or column in columns:
            manifest[column] = table[column].to_numpy()
    manifest.to_csv(folder / "labels.csv", index=False)
    return relative_paths


def _link(link: Path, target: Path) -> None:
    """Hard-link `link` to `target` (a copy across file systems), replacing an older file."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if not link.is_symlink() and link.stat().st_ino == target.stat().st_ino:
            return
        link.unlink()
    try:
        os.link(target, link)
    except OSError:  # another file system, or links not allowed: a copy reads the same
        shutil.copyfile(target, link)


def _write_pixels(path: Path, pixels: str) -> None:
    """Decode a FER2013 pixel string (2304 grey values) to a 48x48 PNG."""
    from PIL import Image

    values = np.array(pixels.split(), dtype=np.uint8)
    side = int(round(len(values) ** 0.5))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.reshape(side, side), mode="L").save(path)
