"""Ingest at scale: the per-image root test is a prefix test that answers as `is_inside` does."""

from __future__ import annotations

import pytest

from fercleaner.datasets._common import is_inside
from fercleaner.datasets.reader import _is_under


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
