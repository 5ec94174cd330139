"""The cache's on-disk format: folder naming, the index, generations of the pixel file, locking.

Everything here must stay compatible with caches already on disk: a change to the index
columns or metadata, or to how rows are laid out, bumps `FORMAT_VERSION` (every cache is
then rebuilt once).

On disk, per (dataset root, size, channels):

    <cache root>/<root name>-<hash>/<size>px-<grey|rgb>/
        images-<generation>.u8   rows of size*size*channels bytes
        index.parquet            sample_id, fingerprint, row (+ JSON metadata), written atomically
        lock                     serialises concurrent builds

The index is written only after the pixel rows are flushed, so a crash leaves the old
index pointing at valid rows; rows are overwritten in place when a file changes, and the
file is rewritten as a new generation only when cached samples must be dropped. A long
build also commits the index now and then while it decodes (`build.CHECKPOINT_S`), with
an empty fingerprint for every row not yet decoded: a build killed midway resumes from
there and decodes only those rows.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner.atomic import atomic_path
from fercleaner.errors import OutputError

#: 3: 16-bit and float images are scaled to 8 bits instead of clipped (fercleaner.decode),
#: so rows an older decoder wrote for them are wrong and every cache is rebuilt once.
#: 4: photos with an EXIF orientation are decoded upright (older rows lie on their side).
FORMAT_VERSION = 4
_INDEX_KEY = b"fercleaner_cache"


@dataclass
class Store:
    """The on-disk state: index columns plus where the pixel rows live."""

    sample_ids: list[str]
    fingerprints: list[str]
    paths: list[str]
    data_file: str
    generation: int


def cache_directory(cache_root: Path, root: str, *, size: int, channels: int) -> Path:
    """The folder of one dataset root at one size and channel count (not created)."""
    return cache_root / root_key(root) / f"{size}px-{'grey' if channels == 1 else 'rgb'}"


def root_key(root: str) -> str:
    """Readable and unique folder name for a dataset root: `<name>-<hash of the full path>`."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(root).name or "root")[:40]
    return f"{name}-{hashlib.blake2b(root.encode(), digest_size=6).hexdigest()}"


def read_store(directory: Path, *, size: int, channels: int, row_bytes: int) -> Store:
    """The current index, or an empty store when there is none (or it is unusable)."""
    empty = Store([], [], [], "images-0.u8", 0)
    index = directory / "index.parquet"
    if not index.exists():
        return empty
    try:
        table = pq.read_table(index)
        meta = json.loads((table.schema.metadata or {})[_INDEX_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return empty
    if (meta.get("version"), meta.get("size"), meta.get("channels")) != (
        FORMAT_VERSION,
        size,
        channels,
    ):
        return empty
    rows = table.num_rows
    generation = int(meta["generation"])
    data_file = str(meta["data_file"])
    data_path = directory / data_file
    if not data_path.exists() or data_path.stat().st_size < rows * row_bytes:
        return Store([], [], [], f"images-{generation + 1}.u8", generation + 1)
    if not np.array_equal(table.column("row").to_numpy(), np.arange(rows)):
        return empty
    column = table.column
    return Store(
        column("sample_id").to_pylist(),
        column("fingerprint").to_pylist(),
        column("path").to_pylist(),
        data_file,
        generation,
    )


def write_index(
    directory, ids, fingerprints, paths, *, data_file, generation, size, channels, root
) -> None:
    """Write `index.parquet` atomically: one row per cached sample, in pixel-row order."""
    meta = {
        "version": FORMAT_VERSION,
        "size": size,
        "channels": channels,
        "rows": len(ids),
        "data_file": data_file,
        "generation": generation,
        "root": root,
    }
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


def grow(data_path: Path, n_bytes: int) -> None:
    """Make the data file at least `n_bytes` long (new rows read as zeros until decoded).

    The blocks are reserved up front: a sparse file on a full disk would let the build
    write rows into the memory map until the kernel kills it with SIGBUS.

    Raises:
        OutputError: the disk has no room for the rows; names the folder and the fix.
    """
    # read-write, not append: glibc's fallocate emulation (NFS, FUSE) refuses O_APPEND
    fd = os.open(data_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        have = os.fstat(fd).st_size
        if have >= n_bytes:
            return
        try:
            os.posix_fallocate(fd, have, n_bytes - have)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise OutputError(
                    f"no room for the decoded images in {data_path.parent}: the cache needs "
                    f"{(n_bytes - have) / 2**20:,.1f} MiB more; free that much, or point "
                    "FERCLEANER_CACHE at a folder on a bigger disk"
                ) from None
            os.ftruncate(fd, n_bytes)  # cannot reserve here: the rows stay sparse, as before
    finally:
        os.close(fd)


def rewrite(
    directory: Path, store: Store, data_path: Path, *, keep: Sequence[int], row_bytes: int
) -> Store:
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
    return Store(store.sample_ids, store.fingerprints, store.paths, new_file, generation)


def remove_stale_generations(directory: Path, *, keep: str) -> None:
    """Delete every pixel file but `keep` (earlier generations, left by a crash or a rewrite)."""
    for stale in directory.glob("images-*.u8"):
        if stale.name != keep:
            with contextlib.suppress(OSError):
                stale.unlink()


def fsync(path: Path) -> None:
    """Flush a file's data to disk (nothing when it does not exist)."""
    if path.exists():
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Exclusive advisory lock so two builds of the same cache never interleave."""
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
