"""`fercleaner.atomic`: a replaced file is whole and has the mode a plain write gives it."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from fercleaner import atomic
from fercleaner.atomic import atomic_path, write_text_atomic


@pytest.fixture
def umask_027():
    """Run under umask 027 (group may read, others nothing), restored afterwards."""
    old = os.umask(0o027)
    atomic.get_umask.cache_clear()
    yield
    os.umask(old)
    atomic.get_umask.cache_clear()


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_0666_less_the_umask_not_a_temp_files_0600(tmp_path, umask_027):
    write_text_atomic(tmp_path / "summary.json", "{}")
    with atomic_path(tmp_path / "train.parquet") as tmp:  # pyarrow rewrites the temp file
        pd.DataFrame({"a": [1]}).to_parquet(tmp)
    assert _mode(tmp_path / "summary.json") == 0o640
    assert _mode(tmp_path / "train.parquet") == 0o640
    assert pd.read_parquet(tmp_path / "train.parquet")["a"].tolist() == [1]


def test_a_replaced_file_keeps_its_mode(tmp_path, umask_027):
    target = tmp_path / "labels.csv"
    target.write_text("old")
    target.chmod(0o604)
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert _mode(target) == 0o604


def test_reading_the_umask_leaves_it_as_it_was(umask_027):
    assert atomic.get_umask() == 0o027
    assert os.umask(0o027) == 0o027  # still set: the read put it back
