"""Decoded-image cache: contents equal direct decoding, reuse, invalidation, appends, quarantine."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import fercleaner.cache.jobs as cache_jobs
from fercleaner.cache import build_cache, default_cache_root
from fercleaner.errors import DatasetError, OutputError
from fercleaner.synth import generate_faces, read_truth, truth_path, write_synthetic_dataset


def _write_pngs(folder: Path, images: np.ndarray) -> pd.DataFrame:
    """Save faces as PNGs and return the minimal sample table the cache needs."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"img{i:03d}.png")
        ids.append(f"img{i:03d}.png")
    return pd.DataFrame({"sample_id": ids, "path": [str(folder / s) for s in ids]})


@pytest.fixture
def faces():
    images, _ = generate_faces(24, seed=0)
    return images


@pytest.fixture
def counted_decodes(monkeypatch):
    """Count calls to the image decoder (serial builds decode in this process)."""
    calls: list[str] = []
    real = cache_jobs.decode_image

    def counting(path, **kwargs):
        calls.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(cache_jobs, "decode_image", counting)
    return calls


def test_cache_rows_equal_the_source_pixels(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces)
    cache = build_cache(samples, size=48, channels=1, workers=1)
    assert cache.images.shape == (24, 48, 48, 1) and cache.images.dtype == np.uint8
    assert not cache.images.flags.writeable
    assert list(cache.sample_ids) == list(samples["sample_id"])
    rows = cache.rows(samples["sample_id"])
    np.testing.assert_array_equal(cache.images[rows][..., 0], faces)
    assert cache.n_decoded == 24 and cache.n_reused == 0 and cache.problems.empty
    assert Path(os.environ["FERCLEANER_CACHE"]) in cache.directory.parents
    assert default_cache_root() == Path(os.environ["FERCLEANER_CACHE"])


def test_rerun_decodes_nothing(tmp_path, faces, counted_decodes):
    samples = _write_pngs(tmp_path / "ds", faces)
    build_cache(samples, size=48, channels=1, workers=1)
    assert len(counted_decodes) == 24
    again = build_cache(samples, size=48, channels=1, workers=1)
    assert len(counted_decodes) == 24, "a rerun must not decode"
    assert again.n_decoded == 0 and again.n_reused == 24
    np.testing.assert_array_equal(again.images[again.rows(samples["sample_id"])][..., 0], faces)


def test_changed_file_is_decoded_again_and_only_it(tmp_path, faces, counted_decodes):
    samples = _write_pngs(tmp_path / "ds", faces)
    first = build_cache(samples, size=48, channels=1, workers=1)
    before = np.array(first.images)
    changed = tmp_path / "ds" / "img005.png"
    Image.fromarray(255 - faces[5]).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # coarse-mtime safe
    counted_decodes.clear()

    again = build_cache(samples, size=48, channels=1, workers=1)
    assert counted_decodes == [str(changed)]
    assert again.n_decoded == 1 and again.n_reused == 23
    row = again.rows(["img005.png"])[0]
    np.testing.assert_array_equal(again.images[row][..., 0], 255 - faces[5])
    others = [r for r in range(24) if r != row]
    np.testing.assert_array_equal(np.asarray(again.images)[others], before[others])


def test_new_samples_are_appended(tmp_path, faces, counted_decodes):
    samples = _write_pngs(tmp_path / "ds", faces)
    build_cache(samples.iloc[:10], size=48, channels=1, workers=1)
    counted_decodes.clear()
    grown = build_cache(samples, size=48, channels=1, workers=1)
    assert len(counted_decodes) == 14 and grown.n_reused == 10
    np.testing.assert_array_equal(grown.images[grown.rows(samples["sample_id"])][..., 0], faces)
    # a later subset request still sees everything cached for this root
    subset = build_cache(samples.iloc[20:], size=48, channels=1, workers=1)
    assert subset.n_decoded == 0 and len(subset) == 24


def test_bad_files_are_quarantined_never_substituted(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces)
    folder = tmp_path / "ds"
    (folder / "img001.png").write_bytes(b"this is not an image")
    (folder / "img002.png").write_bytes(b"")
    good = (folder / "img003.png").read_bytes()
    (folder / "img003.png").write_bytes(good[: len(good) // 2])  # truncated
    (folder / "img004.png").unlink()

    cache = build_cache(samples, size=48, channels=1, workers=1)
    kinds = dict(zip(cache.problems["sample_id"], cache.problems["kind"], strict=True))
    assert kinds == {
        "img001.png": "not_an_image",
        "img002.png": "empty_file",
        "img003.png": "corrupt_image",
        "img004.png": "missing_file",
    }
    assert list(cache.problems.columns) == ["file", "row", "sample_id", "kind", "reason", "fix"]
    assert (cache.problems["file"] == cache.problems["sample_id"]).all()  # relative to the root
    assert len(cache) == 20 and "img001.png" not in cache
    with pytest.raises(KeyError, match="img001.png"):
        cache.rows(["img000.png", "img001.png"])
    np.testing.assert_array_equal(cache.find_cached(["img000.png", "img004.png"]), [True, False])
    ok = [i for i in range(24) if i not in (1, 2, 3, 4)]
    ids = samples["sample_id"].iloc[ok]
    np.testing.assert_array_equal(cache.images[cache.rows(ids)][..., 0], faces[ok])


def test_a_cached_file_that_breaks_later_is_dropped_and_rows_stay_aligned(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces)
    build_cache(samples, size=48, channels=1, workers=1)
    (tmp_path / "ds" / "img000.png").write_bytes(b"garbage now")
    (tmp_path / "ds" / "img010.png").unlink()
    cache = build_cache(samples, size=48, channels=1, workers=1)
    assert sorted(cache.problems["sample_id"]) == ["img000.png", "img010.png"]
    assert len(cache) == 22 and len(cache.images) == 22
    for row, sample_id in enumerate(cache.sample_ids):
        np.testing.assert_array_equal(cache.images[row][..., 0], faces[int(sample_id[3:6])])
    assert len(list(cache.directory.glob("images-*.u8"))) == 1  # the old generation is gone
    # repairing the file brings the sample back
    Image.fromarray(faces[0]).save(tmp_path / "ds" / "img000.png")
    repaired = build_cache(samples.drop(index=10), size=48, channels=1, workers=1)
    assert repaired.n_decoded == 1 and repaired.problems.empty
    np.testing.assert_array_equal(
        repaired.images[repaired.rows(["img000.png"])[0]][..., 0], faces[0]
    )


def test_process_pool_matches_serial_decoding(tmp_path, faces, monkeypatch):
    samples = _write_pngs(tmp_path / "ds", faces)
    (tmp_path / "ds" / "img007.png").write_bytes(b"broken")
    monkeypatch.setattr(cache_jobs, "_SERIAL_BELOW", 0)
    monkeypatch.setattr(cache_jobs, "_TASK_ROWS", 5)
    seen: list[tuple[int, int]] = []
    pooled = build_cache(
        samples,
        size=32,
        channels=3,
        workers=2,
        cache_dir=tmp_path / "a",
        progress=lambda d, t: seen.append((d, t)),
    )
    serial = build_cache(samples, size=32, channels=3, workers=1, cache_dir=tmp_path / "b")
    assert seen[-1] == (24, 24)
    assert list(pooled.sample_ids) == list(serial.sample_ids)
    np.testing.assert_array_equal(np.asarray(pooled.images), np.asarray(serial.images))
    assert list(pooled.problems["sample_id"]) == ["img007.png"]


def test_resize_and_rgb_follow_pil(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces[:3])
    cache = build_cache(samples, size=32, channels=3, workers=1)
    assert cache.images.shape == (3, 32, 32, 3)
    expected = Image.open(samples["path"][1]).convert("RGB").resize((32, 32), Image.BILINEAR)
    np.testing.assert_array_equal(cache.images[1], np.asarray(expected))
    # another size is another cache, not a mix
    other = build_cache(samples, size=48, channels=1, workers=1)
    assert other.directory != cache.directory and other.n_decoded == 3


def test_face_box_is_cropped(tmp_path):
    from fercleaner.datasets import read_dataset

    out = write_synthetic_dataset(tmp_path / "an", n=8, layout="affectnet", seed=1)
    truth, _ = read_truth(truth_path(out))
    images, _ = generate_faces(8, seed=1)
    samples = read_dataset(out, check_images=False).samples
    cache = build_cache(samples, size=48, channels=1, workers=1)
    order = truth.set_index("sample_id").index.get_indexer(cache.sample_ids)
    diff = np.abs(cache.images[..., 0].astype(int) - images[order]).mean()
    assert diff < 4  # JPEG loss only: the box found the face

    moved = samples.copy()
    moved["face_x"] = moved["face_x"] + 1  # a changed box is a changed source
    assert build_cache(moved, size=48, channels=1, workers=1).n_decoded == 8


def test_pixel_csv_rows(tmp_path):
    from fercleaner.datasets import read_dataset

    out = write_synthetic_dataset(tmp_path / "fer", n=12, layout="fer2013", seed=2)
    images, _ = generate_faces(12, seed=2, classes=read_truth(truth_path(out))[1]["classes"])
    samples = read_dataset(out, check_images=False).samples
    cache = build_cache(samples, size=48, channels=1, workers=1)
    rows = cache.rows([f"fer2013.csv#{r}" for r in range(12)])
    np.testing.assert_array_equal(cache.images[rows][..., 0], images)
    again = build_cache(samples, size=48, channels=1, workers=1)
    assert again.n_decoded == 0

    broken = samples.copy()
    broken.loc[broken.index[0], "pixels"] = "1 2 3"
    cache = build_cache(broken, size=48, channels=1, workers=1)
    assert list(cache.problems["kind"]) == ["malformed_row"]
    assert "fer2013.csv#0" not in cache


def test_invalid_requests_name_the_problem(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces[:2])
    with pytest.raises(DatasetError, match="no column"):
        build_cache(samples.drop(columns="path"), size=48, channels=1)
    with pytest.raises(DatasetError, match="repeated sample_id"):
        build_cache(pd.concat([samples, samples]), size=48, channels=1)
    with pytest.raises(DatasetError, match="channels=2"):
        build_cache(samples, size=48, channels=2)


def test_unusable_index_is_rebuilt(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces[:4])
    first = build_cache(samples, size=48, channels=1, workers=1)
    (first.directory / "index.parquet").write_bytes(b"torn")
    again = build_cache(samples, size=48, channels=1, workers=1)
    assert again.n_decoded == 4
    np.testing.assert_array_equal(again.images[..., 0], faces[:4])


_PARENT_PID = os.getpid()


def _double_but_die_in_a_worker(x: int) -> int:
    if os.getpid() != _PARENT_PID:
        os._exit(1)  # a worker killed mid-job (e.g. by the OOM killer)
    return 2 * x


def test_a_broken_pool_loses_no_work():
    from fercleaner._pool import run_jobs

    results: dict[int, int] = {}
    run_jobs(
        _double_but_die_in_a_worker,
        [(i,) for i in range(6)],
        workers=2,
        on_done=results.__setitem__,
    )
    assert results == {i: 2 * i for i in range(6)}


def test_entries_whose_file_is_gone_are_pruned_others_kept(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces)
    build_cache(samples, size=48, channels=1, workers=1)
    for i in range(12, 24):
        (tmp_path / "ds" / f"img{i:03d}.png").unlink()  # e.g. a regenerated dataset
    cache = build_cache(samples.iloc[:6], size=48, channels=1, workers=1)
    assert cache.n_decoded == 0 and cache.problems.empty
    assert sorted(cache.sample_ids) == [f"img{i:03d}.png" for i in range(12)]
    np.testing.assert_array_equal(
        cache.images[cache.rows(samples["sample_id"][:12])][..., 0], faces[:12]
    )


def test_a_torn_data_file_is_rebuilt_not_trusted(tmp_path, faces):
    samples = _write_pngs(tmp_path / "ds", faces[:4])
    first = build_cache(samples, size=48, channels=1, workers=1)
    (data_file,) = first.directory.glob("images-*.u8")
    with open(data_file, "r+b") as fh:
        fh.truncate(48 * 48 * 2)  # only two of four rows survived
    again = build_cache(samples, size=48, channels=1, workers=1)
    assert again.n_decoded == 4
    np.testing.assert_array_equal(again.images[..., 0], faces[:4])


def test_a_full_disk_is_one_clear_error_before_any_row_is_written(
    tmp_path, faces, monkeypatch, counted_decodes
):
    """Blocks are reserved up front: a sparse file on a full disk ends in SIGBUS."""
    import errno

    samples = _write_pngs(tmp_path / "ds", faces)

    def disk_full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", disk_full)
    with pytest.raises(OutputError, match=r"no room for the decoded images in .* 0.1 MiB more"):
        build_cache(samples, size=48, channels=1, workers=1)
    assert counted_decodes == []


@pytest.mark.parametrize("code", ["EOPNOTSUPP", "EBADF"])  # EBADF: glibc's emulation
def test_a_file_system_without_fallocate_still_builds(tmp_path, faces, monkeypatch, code):
    import errno

    samples = _write_pngs(tmp_path / "ds", faces)

    def unsupported(fd, offset, length):
        raise OSError(getattr(errno, code), "cannot reserve")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    cache = build_cache(samples, size=48, channels=1, workers=1)
    np.testing.assert_array_equal(cache.images[cache.rows(samples["sample_id"])][..., 0], faces)
