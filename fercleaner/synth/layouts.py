"""Writers that lay synthetic faces out exactly as each dataset reader expects to find them.

One function per layout (see docs/architecture.md, "dataset layouts"); each takes the
images, the truth table (with `split` filled in) and writes files under `root`, returning
the `sample_id` of every face exactly as `fercleaner.datasets.read_dataset` produces it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fercleaner._pool import run_jobs
from fercleaner.classes import (
    AFFECTNET_CODES,
    CANONICAL_CLASSES,
    FER2013_CODES,
    FERPLUS_VOTE_COLUMNS,
    RAFDB_CODES,
)
from fercleaner.priors import AU_IDS, au_column

#: Splits each layout can express, in the order `splits=` fractions refer to.
LAYOUT_SPLITS: dict[str, tuple[str, ...]] = {
    "imagefolder": ("train", "val", "test"),
    "ferplus": ("train", "val", "test"),
    "fer2013": ("train", "val", "test"),
    "rafdb": ("train", "test"),
    "affectnet": ("train", "val"),
    "csv": ("train", "val", "test"),
}

#: Classes each layout's label format can encode (FER2013 and RAF-DB have no contempt).
LAYOUT_CLASSES: dict[str, tuple[str, ...]] = {
    "fer2013": tuple(c for c in CANONICAL_CLASSES if c in FER2013_CODES.values()),
    "rafdb": tuple(c for c in CANONICAL_CLASSES if c in RAFDB_CODES.values()),
}

_FERPLUS_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
_FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
_AFFECTNET_FILES = {"train": "training.csv", "val": "validation.csv"}

Progress = Callable[[int], None]
_SAVE_SPAN = 256
Votes = tuple[np.ndarray, np.ndarray]  # (N, 8) counts over CANONICAL_CLASSES, (N,) unknown


def _save(image: np.ndarray, path: Path) -> None:
    """Encode one face as PNG (fast, lossless) or JPEG (quality 95) by extension."""
    if path.suffix == ".png":
        Image.fromarray(image).save(path, format="PNG", compress_level=1)
    else:
        Image.fromarray(image).save(path, format="JPEG", quality=95)


def _save_job(root: str, relpaths: list[str], images: np.ndarray) -> int:
    for rel, image in zip(relpaths, images, strict=True):
        _save(image, Path(root) / rel)
    return len(relpaths)


def save_images(
    root: Path, images: np.ndarray, relpaths: list[str], *, tick: Progress, workers: int = 1
) -> None:
    """Encode and write `images[i]` to `root / relpaths[i]`, on `workers` processes.

    PNG/JPEG encoding dominates writing, and PIL holds the GIL while encoding, so
    processes (not threads) are what make a second core count.
    """
    for folder in {str(Path(rel).parent) for rel in relpaths}:
        (root / folder).mkdir(parents=True, exist_ok=True)
    spans = range(0, len(relpaths), _SAVE_SPAN)
    jobs = [(str(root), relpaths[i : i + _SAVE_SPAN], images[i : i + _SAVE_SPAN]) for i in spans]
    run_jobs(_save_job, jobs, workers=workers, on_done=lambda _i, count: tick(count))


def _width(n: int, minimum: int) -> int:
    return max(minimum, len(str(n)))


def write_imagefolder(
    root: Path, images, truth: pd.DataFrame, *, tick: Progress, workers: int, **_
) -> list[str]:
    """`<root>/<split>/<given_label>/<i>.png`."""
    width = _width(len(truth), 6)
    ids = [
        f"{split}/{label}/{i:0{width}d}.png"
        for i, (split, label) in enumerate(zip(truth["split"], truth["given_label"], strict=True))
    ]
    save_images(root, images, ids, tick=tick, workers=workers)
    return ids


def write_csv(
    root: Path, images, truth: pd.DataFrame, *, tick: Progress, workers: int, **_
) -> list[str]:
    """`<root>/labels.csv` (path, label, split, valence, arousal, au_*) + `<root>/images/`."""
    width = _width(len(truth), 6)
    ids = [f"images/{i:0{width}d}.png" for i in range(len(truth))]
    save_images(root, images, ids, tick=tick, workers=workers)
    au_cols = [au_column(a) for a in AU_IDS]
    table = pd.DataFrame({"path": ids, "label": truth["given_label"], "split": truth["split"]})
    table[["valence", "arousal", *au_cols]] = truth[["valence", "arousal", *au_cols]].round(4)
    table.to_csv(root / "labels.csv", index=False)
    return ids


def write_ferplus(
    root: Path, images, truth: pd.DataFrame, *, tick: Progress, votes: Votes, workers: int, **_
) -> list[str]:
    """`<root>/FER2013{Train,Valid,Test}/label.csv` + PNGs; given label = the votes' plurality."""
    counts, unknown = votes
    size = images.shape[1]
    box = f"(0, 0, {size}, {size})"
    width = _width(len(truth), 7)
    ids = []
    rows: dict[str, list[list]] = {}
    for i, split in enumerate(truth["split"]):
        folder = _FERPLUS_FOLDERS[split]
        name = f"fer{i:0{width}d}.png"
        rows.setdefault(folder, []).append([name, box, *counts[i].tolist(), int(unknown[i]), 0])
        ids.append(f"{folder}/{name}")
    save_images(root, images, ids, tick=tick, workers=workers)
    for folder, lines in rows.items():
        with open(root / folder / "label.csv", "w", newline="") as fh:
            csv.writer(fh, quoting=csv.QUOTE_MINIMAL).writerows(lines)
    return ids


def write_fer2013(
    root: Path, images, truth: pd.DataFrame, *, tick: Progress, votes: Votes, **_
) -> list[str]:
    """`<root>/fer2013.csv` (emotion, pixels, Usage) + row-aligned `fer2013new.csv` votes.

    The FER+ votes here are honest draws from the soft label, so they disagree with a
    planted wrong `emotion`, as the real FER+ relabelling disagrees with FER2013.
    """
    root.mkdir(parents=True, exist_ok=True)
    code = {name: c for c, name in FER2013_CODES.items()}
    grey = np.array([str(v) for v in range(256)], dtype=object)
    counts, unknown = votes
    width = _width(len(truth), 7)
    with (
        open(root / "fer2013.csv", "w", newline="") as fh,
        open(root / "fer2013new.csv", "w", newline="") as fh_new,
    ):
        out, out_new = csv.writer(fh), csv.writer(fh_new)
        out.writerow(["emotion", "pixels", "Usage"])
        out_new.writerow(["Usage", "Image name", *FERPLUS_VOTE_COLUMNS])
        for r, (split, label) in enumerate(zip(truth["split"], truth["given_label"], strict=True)):
            usage = _FER2013_USAGE[split]
            out.writerow([code[label], " ".join(grey[images[r].ravel()]), usage])
            out_new.writerow(
                [usage, f"fer{r:0{width}d}.png", *counts[r].tolist(), int(unknown[r]), 0]
            )
            tick(1)
    return [f"fer2013.csv#{r}" for r in range(len(truth))]


def write_rafdb(
    root: Path,
    images,
    truth: pd.DataFrame,
    *,
    tick: Progress,
    classes: list[str],
    workers: int,
    **_,
) -> list[str]:
    """`EmoLabel/list_patition_label.txt`, `EmoLabel/distribution.txt`, `Image/aligned/*.jpg`."""
    code = {name: c for c, name in RAFDB_CODES.items()}
    raf_order = [RAFDB_CODES[c] for c in sorted(RAFDB_CODES)]
    to_raf = [raf_order.index(c) for c in classes]
    seen = {"train": 0, "test": 0}
    ids, labels, dists = [], [], []
    for split, label, soft in zip(
        truth["split"], truth["given_label"], truth["soft_label"], strict=True
    ):
        seen[split] += 1
        name = f"{split}_{seen[split]:0{5 if split == 'train' else 4}d}.jpg"
        dist = np.zeros(len(raf_order))
        dist[to_raf] = soft
        labels.append(f"{name} {code[label]}\n")
        dists.append(name + " " + " ".join(f"{p:.4f}" for p in dist) + "\n")
        ids.append(f"Image/aligned/{name[:-4]}_aligned.jpg")
    (root / "EmoLabel").mkdir(parents=True)
    save_images(root, images, ids, tick=tick, workers=workers)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("".join(labels))
    (root / "EmoLabel" / "distribution.txt").write_text("".join(dists))
    return ids


def write_affectnet(
    root: Path,
    images,
    truth: pd.DataFrame,
    *,
    tick: Progress,
    rng: np.random.Generator,
    workers: int,
    **_,
) -> list[str]:
    """`training.csv` / `validation.csv` + `Manually_Annotated_Images/<sub>/<i>.jpg`.

    Each face is pasted at a random offset into a larger frame and the CSV carries its
    box, so readers and the cache must crop, as with real AffectNet images.
    """
    code = {name: c for c, name in AFFECTNET_CODES.items()}
    size = images.shape[1]
    margin = max(4, size // 4)
    offsets = rng.integers(0, 2 * margin + 1, size=(len(truth), 2))
    pad = ((0, 0), (margin, margin), (margin, margin)) + (((0, 0),) if images.ndim == 4 else ())
    frames = np.pad(images, pad, mode="edge")
    for i, (ox, oy) in enumerate(offsets):  # move face i from (margin, margin) to (ox, oy)
        frames[i] = np.roll(frames[i], (int(oy) - margin, int(ox) - margin), axis=(0, 1))
    va = truth[["valence", "arousal"]].to_numpy(dtype=np.float64).round(4)
    width = _width(len(truth), 7)
    ids = []
    rows: dict[str, list[list]] = {}
    for i, (split, label) in enumerate(zip(truth["split"], truth["given_label"], strict=True)):
        sub = f"{i // 1000}/{i:0{width}d}.jpg"
        ox, oy = (int(o) for o in offsets[i])
        row = [sub, ox, oy, size, size, "", code[label], float(va[i, 0]), float(va[i, 1])]
        rows.setdefault(split, []).append(row)
        ids.append(f"Manually_Annotated_Images/{sub}")
    save_images(root, frames, ids, tick=tick, workers=workers)
    header = [
        "subDirectory_filePath",
        "face_x",
        "face_y",
        "face_width",
        "face_height",
        "facial_landmarks",
        "expression",
        "valence",
        "arousal",
    ]
    for split, lines in rows.items():
        with open(root / _AFFECTNET_FILES[split], "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(lines)
    return ids


WRITERS: dict[str, Callable[..., list[str]]] = {
    "imagefolder": write_imagefolder,
    "ferplus": write_ferplus,
    "fer2013": write_fer2013,
    "rafdb": write_rafdb,
    "affectnet": write_affectnet,
    "csv": write_csv,
}
