"""What a cache request asks for: the dataset root, and each sample's decode source and fingerprint.

The fingerprint (size + mtime_ns plus the face box, or a hash of a pixel-CSV row) decides
what is decoded again; samples whose file cannot even be stat'ed become problems here,
before any decoding.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd

from fercleaner.datasets.problems import DEFAULT_FIXES

_BOX_COLUMNS = ("face_x", "face_y", "face_w", "face_h")


def dataset_root(samples: pd.DataFrame) -> str:
    """The dataset root: `path` minus the file part of `sample_id` (same for every row)."""
    roots = set()
    for sample_id, path in zip(samples["sample_id"], samples["path"], strict=True):
        file_part = str(sample_id).split("#", 1)[0]
        path = str(path).replace(os.sep, "/")
        if file_part and path.endswith("/" + file_part):
            roots.add(path[: -len(file_part) - 1])
        else:
            roots.add(os.path.dirname(path))
        if len(roots) > 1:
            break
    if len(roots) == 1:
        return roots.pop()
    return os.path.commonpath([str(p) for p in samples["path"]]) if len(samples) else ""


def fingerprint(samples: pd.DataFrame, root: str):
    """Per sample: fingerprint, decode source, and stat problems by position.

    Sources are ("file", path, box) or ("pixels", path, pixel string).
    """
    n = len(samples)
    paths = samples["path"].astype(str).tolist()
    pixels = samples["pixels"].tolist() if "pixels" in samples.columns else [None] * n
    boxes = _boxes(samples)
    fingerprints: list[str] = [""] * n
    sources: list[tuple] = [None] * n  # type: ignore[list-item]
    problems: dict[int, tuple[str, str]] = {}
    for i in range(n):
        box = boxes[i]
        if pixels[i] is not None and not pd.isna(pixels[i]):
            text = str(pixels[i])
            fingerprints[i] = "px:" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
            sources[i] = ("pixels", paths[i], text)
            continue
        sources[i] = ("file", paths[i], box)
        try:
            info = os.stat(paths[i])
        except FileNotFoundError:
            problems[i] = ("missing_file", f"image file {paths[i]} does not exist")
            continue
        except OSError as exc:
            problems[i] = ("corrupt_image", f"cannot read {paths[i]}: {exc.strerror or exc}")
            continue
        if info.st_size == 0:
            problems[i] = ("empty_file", f"{paths[i]} is empty (0 bytes)")
            continue
        fingerprints[i] = f"{info.st_size}:{info.st_mtime_ns}" + (
            "" if box is None else "@{},{},{},{}".format(*box)
        )
    return fingerprints, sources, problems


def _boxes(samples: pd.DataFrame) -> list[tuple[int, int, int, int] | None]:
    if not all(c in samples.columns for c in _BOX_COLUMNS):
        return [None] * len(samples)
    values = samples[list(_BOX_COLUMNS)].to_numpy(dtype=np.float64, na_value=np.nan)
    return [None if np.isnan(v).any() else tuple(int(x) for x in v) for v in values]


def problem(sample_id: str, kind: str, reason: str, *, file: str, root: str) -> dict:
    """One problems-table row for a sample the cache could not decode (file relative to root)."""
    rel = os.path.relpath(file, root) if root and file.startswith(root) else file
    return {
        "file": rel.replace(os.sep, "/"),
        "row": None,
        "sample_id": sample_id,
        "kind": kind,
        "reason": reason,
        "fix": DEFAULT_FIXES.get(kind, ""),
    }
