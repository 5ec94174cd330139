"""Atomic file writes: write a temp file beside the target, fsync, rename.

A crash at any point leaves either the old file or the new one, never a torn file. The
new file gets the mode a plain `open` would give it (the old file's, else 0666 less the
umask), not the 0600 of a temp file, so another account can read the outputs. A
`kill -9` mid-write can also leave the temp file (`.NAME.XXXXXXXX.tmp`) beside it, which
`remove_stale_temporaries` deletes. `check_output_dir` fails early on an output folder
that cannot be written, before any work is done.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from fercleaner.errors import OutputError

#: Name of a temp file `atomic_path` makes beside TARGET: `.TARGET.` + 8 random chars + `.tmp`.
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success fsync it and rename it over `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _mode_for(target))
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _mode_for(target: Path) -> int:
    """The permission bits `target` keeps (it exists) or a new file gets (0666 less umask)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~get_umask()


@functools.cache
def get_umask() -> int:
    """This process's umask (read once: reading it means setting it for a moment)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file for writing that replaces `target` atomically on close."""
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Atomically replace `target` with `text` (UTF-8)."""
    with atomic_open(target, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json_atomic(target: str | os.PathLike[str], obj: Any) -> None:
    """Atomically replace `target` with `obj` as indented JSON."""
    write_text_atomic(target, json_text(obj))


def json_text(obj: Any) -> str:
    """`obj` as the indented JSON text (newline-terminated) every JSON file here holds."""
    return json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(
    directory: str | os.PathLike[str], *, targets: set[str] | None = None, recursive: bool = False
) -> list[Path]:
    """Delete the temp files `atomic_path` left in `directory` when a writer was killed mid-write.

    Only names of the form `.TARGET.XXXXXXXX.tmp` are touched, and with `targets` only
    those whose TARGET is in it. Call it only while no other process writes there (a
    live writer's temp file would be deleted under it).

    Returns:
        The removed paths, sorted.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        match = _TEMP_NAME.match(path.name)
        if match is None or (targets is not None and match["target"] not in targets):
            continue
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def check_utf8_path(path: str | os.PathLike[str], *, what: str = "output path") -> None:
    """Raise OutputError if `path` is not valid UTF-8: Parquet and JSON cannot name such files.

    Checked before any work, so a long job never fails at its first write.
    """
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise OutputError(
            f"{what} {shown} is not valid UTF-8; choose a name in UTF-8 (the run's Parquet and "
            "JSON files cannot be written under it)."
        ) from None


def check_output_dir(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """Fail early unless `path` is a writable folder or can be created as one; creates nothing.

    Args:
        path: the folder a command will write.
        what: how the message names it (e.g. `--out`).

    Returns:
        `path`, absolute.

    Raises:
        OutputError: `path` (or a part of it) is a file, or the folder that would hold it
            is not writable; the message names the path and what to do.
    """
    target = Path(path).expanduser().absolute()
    check_utf8_path(target, what=what)
    existing = target
    try:
        while not existing.exists() and not existing.is_symlink():
            existing = existing.parent
    except OSError as exc:  # e.g. a parent we may not search
        raise OutputError(
            f"{what} {target} cannot be checked ({exc.strerror}); choose a folder you can write to."
        ) from None
    if not existing.is_dir():
        kind = "a broken link" if existing.is_symlink() and not existing.exists() else "a file"
        problem = (
            f"is {kind}, not a folder"
            if existing == target
            else f"cannot be created: {existing} is {kind}, not a folder"
        )
        raise OutputError(
            f"{what} {target} {problem}; choose a folder path (it is created if missing)."
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        made = "" if existing == target else f" (it would be created in {existing})"
        raise OutputError(
            f"{what} {target} is not writable{made}: {exc.strerror}; choose a folder you can"
            " write to, or fix its permissions."
        ) from None
    return target
