"""Cache builds at scale: a build killed with SIGKILL resumes without decoding its finished rows."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import fercleaner.cache.build as cache_build
import fercleaner.cache.jobs as cache_jobs
from fercleaner.cache import build_cache
from fercleaner.synth import generate_faces

N = 40
JOB_ROWS = 8
KILL_AFTER = 24  # rows done when the build is killed: three jobs of JOB_ROWS


def _write_pngs(folder: Path, images: np.ndarray) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"img{i:03d}.png")
        ids.append(f"img{i:03d}.png")
    return pd.DataFrame({"sample_id": ids, "path": [str(folder / s) for s in ids]})


def _build_then_die(samples: pd.DataFrame, cache_dir: str) -> None:
    """Child: checkpoint after every job, SIGKILL itself once KILL_AFTER rows are done."""
    cache_build.CHECKPOINT_S = cache_build.CHECKPOINT_COST_FACTOR = 0.0
    cache_jobs._TASK_ROWS = JOB_ROWS

    def progress(done: int, total: int) -> None:
        if done >= KILL_AFTER:
            os.kill(os.getpid(), signal.SIGKILL)

    build_cache(samples, size=48, channels=1, cache_dir=cache_dir, workers=1, progress=progress)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_killed_build_resumes_without_redoing_finished_rows(tmp_path, monkeypatch):
    faces, _ = generate_faces(N, seed=3)
    samples = _write_pngs(tmp_path / "ds", faces)
    cache_dir = str(tmp_path / "cache")
    child = multiprocessing.get_context("fork").Process(
        target=_build_then_die, args=(samples, cache_dir)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL

    monkeypatch.setattr(cache_jobs, "_TASK_ROWS", JOB_ROWS)
    decoded: list[str] = []
    real = cache_jobs.decode_image

    def counting(path, **kwargs):
        decoded.append(os.path.basename(path))
        return real(path, **kwargs)

    monkeypatch.setattr(cache_jobs, "decode_image", counting)
    cache = build_cache(samples, size=48, channels=1, cache_dir=cache_dir, workers=1)
    assert (cache.n_reused, cache.n_decoded) == (KILL_AFTER, N - KILL_AFTER)
    assert decoded == list(samples["sample_id"][KILL_AFTER:])
    rows = cache.rows(samples["sample_id"])
    np.testing.assert_array_equal(cache.images[rows][..., 0], faces)


def test_checkpoints_are_spaced_by_time(tmp_path, monkeypatch):
    """With the default spacing a short build writes its index once, at the end."""
    faces, _ = generate_faces(N, seed=4)
    samples = _write_pngs(tmp_path / "ds", faces)
    monkeypatch.setattr(cache_jobs, "_TASK_ROWS", JOB_ROWS)
    writes = []
    real = cache_build.storage.write_index
    monkeypatch.setattr(
        cache_build.storage, "write_index", lambda *a, **k: (writes.append(1), real(*a, **k))
    )
    build_cache(samples, size=48, channels=1, cache_dir=tmp_path / "c1", workers=1)
    assert len(writes) == 1
    monkeypatch.setattr(cache_build, "CHECKPOINT_S", 0.0)
    monkeypatch.setattr(cache_build, "CHECKPOINT_COST_FACTOR", 0.0)
    build_cache(samples, size=48, channels=1, cache_dir=tmp_path / "c2", workers=1)
    assert len(writes) == 1 + N // JOB_ROWS + 1  # one per job, then the final commit


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_rows_a_killed_build_never_decoded_are_not_served_to_a_smaller_request(
    tmp_path, monkeypatch
):
    faces, _ = generate_faces(N, seed=5)
    samples = _write_pngs(tmp_path / "ds", faces)
    cache_dir = str(tmp_path / "cache")
    child = multiprocessing.get_context("fork").Process(
        target=_build_then_die, args=(samples, cache_dir)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL

    first_ten = samples.iloc[:10]
    cache = build_cache(first_ten, size=48, channels=1, cache_dir=cache_dir, workers=1)
    assert cache.n_decoded == 0 and cache.n_reused == 10
    decoded = set(samples["sample_id"][:KILL_AFTER])
    never = set(samples["sample_id"][KILL_AFTER:])
    assert set(cache.sample_ids) == decoded  # decoded rows of other requests stay cached
    assert not never & set(cache.sample_ids)
    rows = cache.rows(samples["sample_id"][:KILL_AFTER])
    np.testing.assert_array_equal(cache.images[rows][..., 0], faces[:KILL_AFTER])
