"""Ingest at scale: a cheap per-image root test, and the AffectNet reader's memory per row."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import pytest

from fercleaner.datasets import affectnet
from fercleaner.datasets._common import is_inside
from fercleaner.datasets.problems import ProblemLog
from fercleaner.datasets.reader import _is_under
from fercleaner.datasets.registry import ReadOptions


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/data/ds/img/a.png", "/data/ds"),
        ("/data/ds", "/data/ds"),
        ("/data/dsx/a.png", "/data/ds"),
        ("/data/d", "/data/ds"),
        ("/data/a.png", "/data/ds"),
        ("/a.png", "/"),
        ("/", "/"),
        ("/data/ds/img/a.png", "/data/ds/img/a.png/x"),
        ("/other/ds/a.png", "/data/ds"),
    ],
)
def test_prefix_test_agrees_with_is_inside(path: str, root: str) -> None:
    assert _is_under(path, root) is is_inside(path, root)


def _write_manifest(root: Path, n: int) -> None:
    header = (
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
        "expression,valence,arousal\n"
    )
    lines = [f'{i // 1000:03d}/{i:07d}.jpg,1,2,40,41,"",{i % 8},0.25,-2\n' for i in range(n)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "training.csv").write_text(header + "".join(lines))


def test_affectnet_rows_are_gathered_as_columns_not_a_dict_per_row(tmp_path: Path) -> None:
    """Peak Python memory per row stays well below a 12-key dict per row (~1 kB here)."""
    root = tmp_path / "affectnet"
    _write_manifest(root, 3000)
    tracemalloc.start()
    try:
        read = affectnet.read(root, root, ReadOptions(), ProblemLog(root))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    samples = read.samples
    assert list(samples.columns) == affectnet.COLUMNS and len(samples) == 3000
    assert peak / len(samples) < 800
    first = samples.iloc[1]
    assert first["sample_id"] == "000/0000001.jpg" and first["given_label"] == "happiness"
    assert (first["face_x"], first["face_h"], first["_row"]) == (1, 41, 3)
    assert first["valence"] == 0.25 and math.isnan(first["arousal"])
    assert samples["_row"].dtype == object and samples["face_w"].dtype == "int64"


def test_affectnet_with_no_usable_row_has_every_column(tmp_path: Path) -> None:
    root = tmp_path / "affectnet"
    root.mkdir()
    (root / "training.csv").write_text(
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
        "expression,valence,arousal\na.jpg,1,2,3,4,,9,0,0\n"
    )
    problems = ProblemLog(root)
    read = affectnet.read(root, root, ReadOptions(), problems)
    assert read.samples.empty and list(read.samples.columns) == affectnet.COLUMNS
    assert read.rows_listed == 1 and problems.label_row_count == 1
