"""Small helpers the layout readers share: split names, safe path joins, CSV rows, folder walks."""

from __future__ import annotations

import contextlib
import csv
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fercleaner.datasets.problems import escape_controls
from fercleaner.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

#: Folder / column spellings of the three splits.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}

#: Files that live in image folders but are never data.
JUNK_NAMES: frozenset[str] = frozenset({"thumbs.db", "desktop.ini"})


def normalize_split(name: str) -> str | None:
    """'Training' -> 'train'; None when the name is not a split."""
    return SPLIT_ALIASES.get(str(name).strip().lower())


def is_junk(name: str) -> bool:
    """Hidden files and OS droppings (.DS_Store, Thumbs.db) that are never samples."""
    return is_hidden(name) or name.lower() in JUNK_NAMES


def is_hidden(name: str) -> bool:
    """A dot file or folder: never a sample, but an image named so is reported, not dropped."""
    return name.startswith(".")


def is_inside(path: str, root: str) -> bool:
    """Whether normalised absolute `path` is `root` or lies under it (string test, no I/O)."""
    return os.path.commonpath([path, root]) == root


@dataclass
class TreeScan:
    """What `scan_tree` found under one folder, in walk order.

    Attributes:
        files: every entry that is not a folder (hidden ones included, OS droppings such
            as Thumbs.db not), each folder's files before its subfolders, sorted by name.
        unreadable: (folder, why) for folders that could not be listed, or that a link
            leads back into (a loop); their content is unknown.
        escaping: (linked folder, its real path) for links to folders outside the root,
            which were not entered.
    """

    files: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    escaping: list[tuple[str, str]] = field(default_factory=list)


def scan_tree(
    folder: str | os.PathLike[str], *, real_root: str, follow_links: bool = False
) -> TreeScan:
    """Walk `folder` recursively without ever failing, following links only where safe.

    Unlike `os.walk`, which drops a folder it cannot list without a word and never enters
    linked folders, every folder is either listed or reported: unreadable folders go to
    `unreadable`, links to folders outside `real_root` (the dataset root's real path) to
    `escaping` unless `follow_links`, and a link to a folder already walked (a loop) to
    `unreadable`. An explicit stack keeps deep trees from exhausting Python's recursion.
    """
    scan = TreeScan()
    top = os.fspath(folder)
    seen: dict[str, str] = {}  # real folder -> the path it was walked under
    stack = [(top, os.path.realpath(top))]
    while stack:
        path, real = stack.pop()
        if real in seen:
            scan.unreadable.append(
                (
                    path,
                    f"it is a link to {real}, which is already read as {seen[real]} (a link loop)",
                )
            )
            continue
        seen[real] = path
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            scan.unreadable.append((path, f"it cannot be listed: {exc.strerror or exc}"))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.lower() in JUNK_NAMES:
                continue
            if is_folder(entry):
                subfolders.append(entry)
            else:
                scan.files.append(entry.path)
        for entry in reversed(subfolders):  # popped in name order
            if not entry.is_symlink():
                stack.append((entry.path, os.path.join(real, entry.name)))
                continue
            target = os.path.realpath(entry.path)
            if not follow_links and not is_inside(target, real_root):
                scan.escaping.append((entry.path, target))
            else:
                stack.append((entry.path, target))
    return scan


def is_folder(entry: os.DirEntry) -> bool:
    """`entry.is_dir()` (following links), False when it cannot even be stat'ed."""
    try:
        return entry.is_dir()  # follows links
    except OSError:  # cannot stat: treat it as a file, whose check then says why
        return False


def join_inside(base: str | os.PathLike[str], relative: str) -> tuple[str, str, bool]:
    """Join a manifest's path to its folder (string ops: this runs once per row).

    An absolute path inside `base` (by name, or under its real path: /tmp is
    /private/tmp on macOS) is as good as the relative one; the image's path is then
    spelled under `base`, so the later link check sees it as inside.

    Returns:
        (absolute path, normalised path relative to `base` with forward slashes, escapes)
        where `escapes` is True for an absolute path outside `base` (kept as written) or
        a relative one whose `..` parts leave it.
    """
    text = relative.strip().replace("\\", "/")
    if os.path.isabs(text) or (len(text) > 1 and text[1] == ":"):
        normal = os.path.normpath(text)
        inside = _relative_inside(normal, os.fspath(base))
        if inside is not None:
            return os.path.join(os.fspath(base), inside), inside.replace(os.sep, "/"), False
        return normal, normal.replace(os.sep, "/"), True
    normal = os.path.normpath(text).replace(os.sep, "/")
    escapes = normal == ".." or normal.startswith("../")
    full = os.path.join(os.fspath(base), normal)
    return (os.path.normpath(full) if escapes else full), normal, escapes


def _relative_inside(path: str, base: str) -> str | None:
    """Normalised absolute `path` relative to `base` (or to its real path); None if outside."""
    for folder in (os.path.normpath(base), _real_folder(base)):
        if os.path.isabs(path) and is_inside(path, folder):
            return os.path.relpath(path, folder)
    return None


@functools.lru_cache(maxsize=16)
def _real_folder(folder: str) -> str:
    """`os.path.realpath`, cached: a manifest of absolute paths asks once per row."""
    return os.path.realpath(folder)


@contextlib.contextmanager
def open_text(path: Path) -> Iterator[Iterator[str]]:
    """The lines of a UTF-8 label file (a byte-order mark, as Excel writes, is dropped).

    A byte that is not UTF-8 ends the read with a `DatasetError` naming the line and byte
    (`describe_bad_utf8`). Decoding it as something else would be a guess: Latin-1
    accepts any byte, so a cp1252 or Shift-JIS file would silently turn into other file
    names (then "missing" images) and other labels, and replacing the byte does the same.
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        yield _utf8_lines(fh, Path(path))


def _utf8_lines(fh: IO[str], path: Path) -> Iterator[str]:
    try:
        yield from fh
    except UnicodeDecodeError:
        raise DatasetError(describe_bad_utf8(path)) from None


def describe_bad_utf8(path: Path) -> str:
    """Where `path` stops being UTF-8 (line, byte offset, the line) and how to fix it."""
    first = None
    bad_lines = 0
    offset = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_lines += 1
                if first is None:
                    first = (number, offset + exc.start, raw[exc.start], raw)
            offset += len(raw)
    source = "WINDOWS-1252"  # Latin-1 as Windows writes it: the usual culprit
    what = "its encoding changed while it was read"  # `first` is None: the file changed
    if first is not None and first[0] == 1 and first[3][:2] in (b"\xff\xfe", b"\xfe\xff"):
        source, what = "UTF-16", "it starts with a UTF-16 byte-order mark"
    elif first is not None:
        number, at, byte, raw = first
        line = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
        line = line if len(line) <= 80 else line[:80] + "..."
        others = f"; {bad_lines - 1:,} more lines like it" if bad_lines > 1 else ""
        what = (
            f"line {number} holds byte 0x{byte:02x} (at byte offset {at:,}), which is not"
            f" UTF-8, in '{escape_controls(line)}'{others}"
        )
    name = path.name
    return (
        f"{path} is not UTF-8 text: {what}. Label files are read as UTF-8 only, because"
        " guessing another encoding can change file names and labels without a word."
        f" Re-save it as UTF-8, e.g. iconv -f {source} -t UTF-8 {name} > utf8.csv (if it was"
        f' written as {source}) and replace {name} with utf8.csv, or choose "CSV UTF-8" in'
        " Excel's Save As"
    )


def read_header(path: Path) -> list[str]:
    """The first CSV row of a label file, stripped, for detection.

    Only the first line is decoded: a bad byte further down must not make the layout
    undetectable (reading the rows reports it with its position).

    Raises:
        DatasetError: the first line is not UTF-8 (a UTF-16 file, say), whose column
            names would otherwise be shown as garbage.
    """
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(describe_bad_utf8(Path(path))) from None
    return [h.strip() for h in next(csv.reader([text]), [])]


def csv_rows(fh: IO[str]) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, fields) per CSV row, or (line, reason) for a line that is no usable row.

    Rows are physical lines. A quoted field that runs over a line break (an unclosed
    quote) would otherwise swallow every line up to the next quote into one field, so
    the line that opens it and each non-blank line it swallowed come back as reasons of
    their own. Blank lines are skipped; a line of only commas is a row of empty fields
    (the reader reports it). The csv module raises on some rows (a field over its size
    limit); one bad row must not end the read, so the error becomes that row's reason.
    """
    consumed: list[str] = []  # the physical lines of the record being parsed

    def lines() -> Iterator[str]:
        for line in fh:
            consumed.append(line)
            yield line

    reader = csv.reader(lines())
    last = 0  # physical lines read before the current record
    while True:
        consumed.clear()
        error = None
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields, error = [], f"unreadable CSV row: {exc}"
        first, last = last + 1, last + len(consumed)
        if len(consumed) > 1:
            yield (
                first,
                (
                    f'an unclosed quote (") on this line runs over lines {first + 1}-{last};'
                    " close the quote (or double a quote inside a field)"
                ),
            )
            for line, text in enumerate(consumed[1:], start=first + 1):
                if text.strip():
                    yield line, f"swallowed by the unclosed quote on line {first}: {_excerpt(text)}"
        elif error is not None:
            yield first, error
        elif len(fields) > 1 or (fields and fields[0].strip()):
            yield first, fields


def _excerpt(text: str, limit: int = 60) -> str:
    """The start of a line, quoted, for a problem reason."""
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_int(text: str) -> int | None:
    """int('3'), int(' 3 '), int('3.0'); None when the field is not a whole number."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return None
        return int(value) if value.is_integer() else None


def build_samples(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """A samples frame with exactly `columns`, in order, even when `rows` is empty."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    if "_row" in frame:
        frame["_row"] = frame["_row"].astype(object)
    return frame
