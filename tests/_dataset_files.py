"""Tiny hand-written dataset files for the reader tests (PIL images, label files)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, *, seed: int = 0, size: int = 8, fmt: str | None = None) -> Path:
    """A small grey image; the format follows the suffix unless `fmt` is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def truncate(path: Path, *, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_rows(path: Path, rows: list[list[object]]) -> Path:
    """A CSV file from rows (the first row may be a header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def ferplus_row(name: str, votes: list[int]) -> list[object]:
    """One FERPlus label.csv row: name, face box, 10 votes."""
    return [name, "(0, 0, 48, 48)", *votes]


def write_ferplus_valid(root: Path, votes: list[list[int]], *, seed: int = 0) -> Path:
    """A FERPlus validation split of tiny 8 px PNGs, one per vote row; returns the dataset root."""
    rng = np.random.default_rng(seed)
    folder = root / "ferplus" / "FER2013Valid"
    folder.mkdir(parents=True)
    rows = []
    for i, row in enumerate(votes):
        name = f"fer{i:07d}.png"
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), mode="L").save(folder / name)
        rows.append(f'{name},"(0, 0, 8, 8)",' + ",".join(map(str, row)))
    (folder / "label.csv").write_text("\n".join(rows) + "\n")
    return root / "ferplus"


def pixels(seed: int = 0) -> str:
    """A valid fer2013 pixel string (48x48 grey values)."""
    values = np.random.default_rng(seed).integers(0, 256, 48 * 48)
    return " ".join(str(v) for v in values)


AFFECTNET_HEADER = [
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


def affectnet_row(path: str, code: int, valence: float = 0.5, arousal: float = -0.25) -> list:
    """One AffectNet manifest row."""
    return [path, 1, 2, 30, 40, "1;2;3", code, valence, arousal]
