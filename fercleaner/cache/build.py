"""The public side of the cache: `build_cache` plans what to decode, decodes it and commits.

`ImageCache` is what a build returns; the on-disk format is `cache.storage`, the decoding
`cache.jobs` and the per-sample fingerprints `cache.samples`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fercleaner.cache import storage
from fercleaner.cache.jobs import ProgressFn, decode_all
from fercleaner.cache.samples import dataset_root, fingerprint, problem
from fercleaner.datasets.problems import PROBLEM_COLUMNS
from fercleaner.errors import DatasetError


@dataclass(frozen=True)
class ImageCache:
    """Decoded images of a dataset at one size and channel count.

    Attributes:
        images: read-only memmap (N, size, size, channels) uint8; row i is `sample_ids[i]`.
            Holds every sample cached for this dataset root, not only the last request.
        sample_ids: (N,) object array of sample ids, row order.
        problems: samples of the last request that failed to decode (problems-table
            columns); they are quarantined: absent from `sample_ids`.
        directory: the cache folder for this root, size and channels.
        n_decoded: images decoded by the build that returned this cache (0 = all reused).
        n_reused: requested images served from earlier builds without decoding.
    """

    images: np.ndarray
    sample_ids: np.ndarray
    problems: pd.DataFrame
    directory: Path
    size: int
    channels: int
    n_decoded: int
    n_reused: int
    _row_of: dict[str, int] = field(repr=False)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self._row_of

    def rows(self, sample_ids: Iterable[str]) -> np.ndarray:
        """Row index into `images` for each id (int64 array).

        Raises:
            KeyError: some ids are not cached (quarantined, or never passed to `build_cache`);
                the message names up to five of them.
        """
        ids = list(sample_ids)
        get = self._row_of.get
        rows = np.fromiter((get(s, -1) for s in ids), dtype=np.int64, count=len(ids))
        if (rows < 0).any():
            missing = [s for s, r in zip(ids, rows, strict=True) if r < 0]
            raise KeyError(
                f"{len(missing)} sample(s) are not in the image cache, e.g. {missing[:5]}; they"
                " failed to decode (see ImageCache.problems) or were never passed to build_cache"
            )
        return rows

    def find_cached(self, sample_ids: Iterable[str]) -> np.ndarray:
        """Boolean mask: which of `sample_ids` have a cached image."""
        row_of = self._row_of
        return np.fromiter((s in row_of for s in sample_ids), dtype=bool)


def default_cache_root() -> Path:
    """`$FERCLEANER_CACHE`, else `~/.cache/fercleaner`."""
    env = os.environ.get("FERCLEANER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fercleaner"


def build_cache(
    samples: pd.DataFrame,
    *,
    size: int,
    channels: int,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int = 2,
    progress: ProgressFn | None = None,
) -> ImageCache:
    """Decode every sample not already cached (or changed since) and return the cache.

    Args:
        samples: sample table with `sample_id` and `path`; optional `face_x..face_h`
            (crop box) and `pixels` (pixel-CSV rows, decoded instead of `path`).
        size: square side of the stored images.
        channels: 1 (grey) or 3 (RGB).
        cache_dir: cache root (default `default_cache_root()`); the folder inside it
            is keyed by dataset root, size and channels.
        workers: decoding processes; 1 decodes in this process.
        progress: called as `progress(done, total)` over the images being decoded.

    Returns:
        The cache; failures are in `.problems`, and decoding never aborts the build.

    Raises:
        DatasetError: `samples` lacks `sample_id`/`path`, repeats an id, or the options are invalid.
    """
    _check_request(samples, size=size, channels=channels)
    root = dataset_root(samples)
    cache_root = Path(cache_dir or default_cache_root()).expanduser()
    directory = storage.cache_directory(cache_root, root, size=size, channels=channels)
    directory.mkdir(parents=True, exist_ok=True)
    with storage.locked(directory / "lock"):
        return _build(
            samples,
            root=root,
            directory=directory,
            size=size,
            channels=channels,
            workers=workers,
            progress=progress,
        )


@dataclass
class _Plan:
    """What a build must do against the stored index, before any decoding."""

    tasks: list[tuple[int, str, tuple, str]]
    """(row, sample_id, source, fingerprint) per image to decode, new rows after the old."""
    new_ids: list[str]
    """Sample ids that get a new row, in row order."""
    new_paths: list[str]
    """The source file of each of `new_ids`."""
    drop: set[int]
    """Stored rows to drop: their sample now fails, or their file is gone."""
    problems: list[dict]
    """Problems-table rows found before decoding (missing, unreadable, empty files)."""
    reused: int
    """Requested samples whose stored row is still current."""


def _plan(samples: pd.DataFrame, store: storage.Store, root: str) -> _Plan:
    """Compare the request with the stored index: what to decode, append, drop and reuse."""
    row_of = {s: i for i, s in enumerate(store.sample_ids)}
    ids = samples["sample_id"].astype(str).tolist()
    fingerprints, sources, stat_problems = fingerprint(samples, root)
    plan = _Plan(tasks=[], new_ids=[], new_paths=[], drop=set(), problems=[], reused=0)
    for i, sample_id in enumerate(ids):
        old = row_of.get(sample_id)
        if i in stat_problems:
            plan.problems.append(
                problem(sample_id, *stat_problems[i], file=sources[i][1], root=root)
            )
            if old is not None:
                plan.drop.add(old)
            continue
        if old is not None and store.fingerprints[old] == fingerprints[i]:
            plan.reused += 1
            continue
        if old is None:
            row = len(store.sample_ids) + len(plan.new_ids)
            plan.new_ids.append(sample_id)
        else:
            row = old
        plan.tasks.append((row, sample_id, sources[i], fingerprints[i]))

    # entries nobody asked for this time stay (other splits, folds), unless their file is
    # gone or they were never decoded (an empty fingerprint: a killed build's checkpoint)
    requested = set(ids)
    stored = zip(store.sample_ids, store.paths, store.fingerprints, strict=True)
    for row, (sample_id, path, fp) in enumerate(stored):
        if sample_id not in requested and (not fp or not os.path.exists(path)):
            plan.drop.add(row)
    path_of_id = dict(zip(ids, (source[1] for source in sources), strict=True))
    plan.new_paths = [path_of_id[s] for s in plan.new_ids]
    return plan


#: Least seconds between two index checkpoints during a build.
CHECKPOINT_S = 30.0
#: A checkpoint also waits this many times as long as the last one took, so writing the
#: index (whose cost grows with N) stays a small share of a build at any N.
CHECKPOINT_COST_FACTOR = 20.0


class _Checkpoint:
    """Commit the index mid-build now and then: a build killed (kill -9, out of memory)
    then resumes from the rows already decoded instead of decoding them all again."""

    def __init__(self, write_index, data_path: Path) -> None:
        self._write_index = write_index
        self._data_path = data_path
        self._last = time.monotonic()
        self._wait_s = CHECKPOINT_S

    def maybe(self) -> None:
        now = time.monotonic()
        if now - self._last < self._wait_s:
            return
        storage.fsync(self._data_path)  # the rows before the index that points at them
        self._write_index()
        self._last = time.monotonic()
        self._wait_s = max(CHECKPOINT_S, CHECKPOINT_COST_FACTOR * (self._last - now))


def _build(samples, *, root, directory, size, channels, workers, progress) -> ImageCache:
    """Plan, decode into the grown pixel file, then drop failures and commit the index."""
    row_bytes = size * size * channels
    store = storage.read_store(directory, size=size, channels=channels, row_bytes=row_bytes)
    plan = _plan(samples, store, root)
    tasks, problems, drop = plan.tasks, plan.problems, plan.drop

    n_rows = len(store.sample_ids) + len(plan.new_ids)
    data_path = directory / store.data_file
    storage.grow(data_path, n_rows * row_bytes)
    ids_out = store.sample_ids + plan.new_ids
    paths_out = store.paths + plan.new_paths
    # a row being decoded has no fingerprint until its job is done: an index checkpointed
    # meanwhile marks it "" (matches nothing), so a resumed build decodes it again
    fps_out = store.fingerprints + [""] * len(plan.new_ids)
    fp_of_row = {row: fp for row, _, _, fp in tasks}
    for row in fp_of_row:
        fps_out[row] = ""

    def write_index(ids: list[str], fps: list[str], paths: list[str]) -> None:
        storage.write_index(
            directory,
            ids,
            fps,
            paths,
            data_file=store.data_file,
            generation=store.generation,
            size=size,
            channels=channels,
            root=root,
        )

    checkpoint = _Checkpoint(lambda: write_index(ids_out, fps_out, paths_out), data_path)

    def rows_done(rows: list[int], job_failed: dict[int, tuple[str, str]]) -> None:
        for row in rows:
            if row not in job_failed:
                fps_out[row] = fp_of_row[row]
        checkpoint.maybe()

    failed = decode_all(
        tasks,
        data_path,
        n_rows=n_rows,
        size=size,
        channels=channels,
        workers=workers,
        progress=progress,
        on_rows_done=rows_done,
    )
    for row, fp in fp_of_row.items():
        fps_out[row] = fp
    source_of_row = {row: source for row, _, source, _ in tasks}
    for row, (kind, reason) in sorted(failed.items()):
        file = source_of_row[row][1]
        problems.append(problem(ids_out[row], kind, reason, file=file, root=root))
        drop.add(row)

    keep = [r for r in range(n_rows) if r not in drop]
    if drop:
        store = storage.rewrite(directory, store, data_path, keep=keep, row_bytes=row_bytes)
        data_path = directory / store.data_file
    ids_out = [ids_out[r] for r in keep]
    fps_out = [fps_out[r] for r in keep]
    paths_out = [paths_out[r] for r in keep]
    storage.fsync(data_path)
    write_index(ids_out, fps_out, paths_out)
    storage.remove_stale_generations(directory, keep=store.data_file)

    shape = (len(ids_out), size, size, channels)
    images = (
        np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)
        if ids_out
        else np.zeros(shape, dtype=np.uint8)
    )
    return ImageCache(
        images=images,
        sample_ids=np.asarray(ids_out, dtype=object),
        problems=pd.DataFrame(problems, columns=list(PROBLEM_COLUMNS)),
        directory=directory,
        size=size,
        channels=channels,
        n_decoded=len(tasks) - len(failed),
        n_reused=plan.reused,
        _row_of={s: i for i, s in enumerate(ids_out)},
    )


def _check_request(samples: pd.DataFrame, *, size: int, channels: int) -> None:
    missing = [c for c in ("sample_id", "path") if c not in samples.columns]
    if missing:
        raise DatasetError(
            f"the sample table has no column(s) {missing}; pass `Dataset.samples` from read_dataset"
        )
    if not 8 <= size <= 4096:
        raise DatasetError(f"cache image size {size} is out of range; use 8..4096 (48 for FER)")
    if channels not in (1, 3):
        raise DatasetError(f"channels={channels}: use 1 (grey) or 3 (RGB)")
    dupes = samples["sample_id"][samples["sample_id"].duplicated()]
    if len(dupes):
        raise DatasetError(
            f"{len(dupes)} repeated sample_id(s) in the sample table, e.g. {dupes.iloc[0]!r};"
            " each image must appear once"
        )
