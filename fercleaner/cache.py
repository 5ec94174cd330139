"""Decode-once image cache: a uint8 memmap on disk plus an index keyed by sample_id + fingerprint.

`build_cache(samples, size=..., channels=...)` decodes only what is new or changed
(fingerprint = file size + mtime_ns, plus the face box; a hash for pixel-CSV rows),
using a process pool that writes straight into the shared memmap by row. Reruns,
other methods and other folds then cost no decoding. Samples that fail to decode are
quarantined in `ImageCache.problems`, never substituted.

On disk, per (dataset root, size, channels):

    <cache root>/<root name>-<hash>/<size>px-<grey|rgb>/
        images-<generation>.u8   rows of size*size*channels bytes
        index.parquet            sample_id, fingerprint, row (+ JSON metadata), written atomically
        lock                     serialises concurrent builds

The index is written only after the pixel rows are flushed, so a crash leaves the old
index pointing at valid rows; rows are overwritten in place when a file changes, and the
file is rewritten as a new generation only when cached samples must be dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner._pool import run_jobs
from fercleaner.atomic import atomic_path
from fercleaner.datasets.problems import DEFAULT_FIXES, PROBLEM_COLUMNS
from fercleaner.decode import DecodeError, decode_image, decode_pixels
from fercleaner.errors import DatasetError

#: 3: 16-bit and float images are scaled to 8 bits instead of clipped (fercleaner.decode),
#: so rows an older decoder wrote for them are wrong and every cache is rebuilt once.
_FORMAT_VERSION = 3
_INDEX_KEY = b"fercleaner_cache"
_BOX_COLUMNS = ("face_x", "face_y", "face_w", "face_h")
#: Fewer images than this are decoded in this process: a pool would cost more than it saves.
_SERIAL_BELOW = 1024
_TASK_ROWS = 512

ProgressFn = Callable[[int, int], None]


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
    root = _dataset_root(samples)
    directory = Path(cache_dir or default_cache_root()).expanduser() / _root_key(root)
    directory = directory / f"{size}px-{'grey' if channels == 1 else 'rgb'}"
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory / "lock"):
        return _build(
            samples, root=root, directory=directory, size=size, channels=channels,
            workers=workers, progress=progress,
        )  # fmt: skip


# ---------------------------------------------------------------------------- the build


@dataclass
class _Store:
    """The on-disk state: index columns plus where the pixel rows live."""

    sample_ids: list[str]
    fingerprints: list[str]
    paths: list[str]
    data_file: str
    generation: int


def _build(samples, *, root, directory, size, channels, workers, progress) -> ImageCache:
    row_bytes = size * size * channels
    store = _read_store(directory, size=size, channels=channels, row_bytes=row_bytes)
    row_of = {s: i for i, s in enumerate(store.sample_ids)}

    ids = samples["sample_id"].astype(str).tolist()
    fingerprints, sources, stat_problems = _fingerprint(samples, root)
    problems: list[dict] = []
    drop: set[int] = set()  # cached rows whose sample now fails
    tasks: list[tuple[int, str, object, object]] = []  # (row, sample_id, source, box)
    new_ids: list[str] = []
    reused = 0
    for i, sample_id in enumerate(ids):
        old = row_of.get(sample_id)
        if i in stat_problems:
            problems.append(_problem(sample_id, *stat_problems[i], file=sources[i][1], root=root))
            if old is not None:
                drop.add(old)
            continue
        if old is not None and store.fingerprints[old] == fingerprints[i]:
            reused += 1
            continue
        if old is None:
            row = len(store.sample_ids) + len(new_ids)
            new_ids.append(sample_id)
        else:
            row = old
        tasks.append((row, sample_id, sources[i], fingerprints[i]))

    # entries nobody asked for this time stay (other splits, folds), unless their file is gone
    requested = set(ids)
    for row, (sample_id, path) in enumerate(zip(store.sample_ids, store.paths, strict=True)):
        if sample_id not in requested and not os.path.exists(path):
            drop.add(row)

    n_old = len(store.sample_ids)
    n_rows = n_old + len(new_ids)
    data_path = directory / store.data_file
    _grow(data_path, n_rows * row_bytes)
    failed = _decode_all(tasks, data_path, n_rows=n_rows, size=size, channels=channels,
                         workers=workers, progress=progress)  # fmt: skip

    fingerprint_of_row = {row: fp for row, _, _, fp in tasks}
    path_of_id = dict(zip(ids, (source[1] for source in sources), strict=True))
    ids_out = store.sample_ids + new_ids
    fps_out = store.fingerprints + [""] * len(new_ids)
    paths_out = store.paths + [path_of_id[s] for s in new_ids]
    for row, fp in fingerprint_of_row.items():
        fps_out[row] = fp
    source_of_row = {row: source for row, _, source, _ in tasks}
    for row, (kind, reason) in sorted(failed.items()):
        file = source_of_row[row][1]
        problems.append(_problem(ids_out[row], kind, reason, file=file, root=root))
        drop.add(row)

    keep = [r for r in range(n_rows) if r not in drop]
    if drop:
        store = _rewrite(directory, store, data_path, keep=keep, row_bytes=row_bytes)
        data_path = directory / store.data_file
    ids_out = [ids_out[r] for r in keep]
    fps_out = [fps_out[r] for r in keep]
    paths_out = [paths_out[r] for r in keep]
    _fsync(data_path)
    _write_index(directory, ids_out, fps_out, paths_out, data_file=store.data_file, generation=store.generation,
                 size=size, channels=channels, root=root)  # fmt: skip
    _remove_stale_generations(directory, keep=store.data_file)

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
        n_reused=reused,
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


def _dataset_root(samples: pd.DataFrame) -> str:
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


def _root_key(root: str) -> str:
    """Readable and unique folder name for a dataset root: `<name>-<hash of the full path>`."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(root).name or "root")[:40]
    return f"{name}-{hashlib.blake2b(root.encode(), digest_size=6).hexdigest()}"


def _fingerprint(samples: pd.DataFrame, root: str):
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


def _problem(sample_id: str, kind: str, reason: str, *, file: str, root: str) -> dict:
    rel = os.path.relpath(file, root) if root and file.startswith(root) else file
    return {"file": rel.replace(os.sep, "/"), "row": None, "sample_id": sample_id, "kind": kind,
            "reason": reason, "fix": DEFAULT_FIXES.get(kind, "")}  # fmt: skip


# ---------------------------------------------------------------------------- decoding


def _decode_all(tasks, data_path: Path, *, n_rows, size, channels, workers, progress):
    """Decode `tasks` into their rows of the memmap; returns {row: (kind, reason)} failures."""
    total = len(tasks)
    if total == 0:
        return {}
    jobs = [
        [(row, sample_id, source) for row, sample_id, source, _ in tasks[i : i + _TASK_ROWS]]
        for i in range(0, total, _TASK_ROWS)
    ]
    args = (str(data_path), n_rows, size, channels)
    failed: dict[int, tuple[str, str]] = {}
    done = 0

    def collect(i: int, result: dict[int, tuple[str, str]]) -> None:
        nonlocal done
        failed.update(result)
        done += len(jobs[i])
        if progress is not None:
            progress(done, total)

    run_jobs(_decode_job, [(job, *args) for job in jobs],
             workers=workers if total >= _SERIAL_BELOW else 1, on_done=collect)  # fmt: skip
    return failed


def _decode_job(job, data_path: str, n_rows: int, size: int, channels: int):
    """Worker: decode each (row, sample_id, source) into the shared memmap."""
    data = np.memmap(data_path, dtype=np.uint8, mode="r+", shape=(n_rows, size, size, channels))
    failed = {}
    for row, sample_id, (kind, path, extra) in job:
        try:
            if kind == "pixels":
                data[row] = decode_pixels(extra, size=size, channels=channels, where=sample_id)
            else:
                data[row] = decode_image(path, size=size, channels=channels, box=extra)
        except DecodeError as exc:
            failed[row] = (exc.kind, exc.reason)
    data.flush()
    del data
    return failed


# ---------------------------------------------------------------------------- storage


def _read_store(directory: Path, *, size: int, channels: int, row_bytes: int) -> _Store:
    """The current index, or an empty store when there is none (or it is unusable)."""
    empty = _Store([], [], [], "images-0.u8", 0)
    index = directory / "index.parquet"
    if not index.exists():
        return empty
    try:
        table = pq.read_table(index)
        meta = json.loads((table.schema.metadata or {})[_INDEX_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return empty
    if (meta.get("version"), meta.get("size"), meta.get("channels")) != (
        _FORMAT_VERSION,
        size,
        channels,
    ):
        return empty
    rows = table.num_rows
    generation = int(meta["generation"])
    data_file = str(meta["data_file"])
    data_path = directory / data_file
    if not data_path.exists() or data_path.stat().st_size < rows * row_bytes:
        return _Store([], [], [], f"images-{generation + 1}.u8", generation + 1)
    if not np.array_equal(table.column("row").to_numpy(), np.arange(rows)):
        return empty
    column = table.column
    return _Store(
        column("sample_id").to_pylist(),
        column("fingerprint").to_pylist(),
        column("path").to_pylist(),
        data_file,
        generation,
    )


def _write_index(
    directory, ids, fingerprints, paths, *, data_file, generation, size, channels, root
):
    meta = {"version": _FORMAT_VERSION, "size": size, "channels": channels, "rows": len(ids),
            "data_file": data_file, "generation": generation, "root": root}  # fmt: skip
    table = pa.table(
        {
            "sample_id": pa.array(ids, pa.string()),
            "fingerprint": pa.array(fingerprints, pa.string()),
            "path": pa.array(paths, pa.string()),
            "row": pa.array(np.arange(len(ids), dtype=np.int64)),
        }
    ).replace_schema_metadata({_INDEX_KEY: json.dumps(meta).encode()})
    with atomic_path(directory / "index.parquet") as tmp:
        pq.write_table(table, tmp)


def _grow(data_path: Path, n_bytes: int) -> None:
    """Make the data file at least `n_bytes` long (new rows read as zeros until decoded)."""
    with open(data_path, "ab") as fh:
        if fh.tell() < n_bytes:
            fh.truncate(n_bytes)


def _rewrite(
    directory: Path, store: _Store, data_path: Path, *, keep: Sequence[int], row_bytes: int
) -> _Store:
    """Copy the kept rows into a new generation file (the old index stays valid until swapped)."""
    generation = store.generation + 1
    new_file = f"images-{generation}.u8"
    n_rows = max(keep, default=-1) + 1  # rows past the last kept one are never read
    with open(directory / new_file, "wb") as fh:
        if n_rows:
            old = np.memmap(data_path, dtype=np.uint8, mode="r", shape=(n_rows, row_bytes))
            for start in range(0, len(keep), 4096):
                fh.write(old[np.asarray(keep[start : start + 4096])].tobytes())
            del old
    return _Store(store.sample_ids, store.fingerprints, store.paths, new_file, generation)


def _remove_stale_generations(directory: Path, *, keep: str) -> None:
    for stale in directory.glob("images-*.u8"):
        if stale.name != keep:
            with contextlib.suppress(OSError):
                stale.unlink()


def _fsync(path: Path) -> None:
    if path.exists():
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Exclusive advisory lock so two builds of the same cache never interleave."""
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
