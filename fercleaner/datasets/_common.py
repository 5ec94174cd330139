"""Small helpers the layout readers share: split names, safe path joins, CSV opening."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

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
    return name.startswith(".") or name.lower() in JUNK_NAMES


def join_inside(base: str | os.PathLike[str], relative: str) -> tuple[str, str, bool]:
    """Join a manifest's relative path to its folder (string ops: this runs once per row).

    Returns:
        (absolute path, normalised relative path with forward slashes, escapes) where
        `escapes` is True for an absolute path or one whose `..` parts leave `base`.
    """
    text = relative.strip().replace("\\", "/")
    if os.path.isabs(text) or (len(text) > 1 and text[1] == ":"):
        normal = os.path.normpath(text)
        return normal, normal.replace(os.sep, "/"), True
    normal = os.path.normpath(text).replace(os.sep, "/")
    escapes = normal == ".." or normal.startswith("../")
    full = os.path.join(os.fspath(base), normal)
    return (os.path.normpath(full) if escapes else full), normal, escapes


def open_text(path: Path):
    """Open a label file as text; a UTF-8 byte-order mark (Excel exports) is dropped."""
    return open(path, encoding="utf-8-sig", newline="", errors="replace")


def csv_rows(fh: IO[str]) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, fields) per non-blank CSV row, or (line, reason) for a row csv rejects.

    The csv module raises on some rows (a field over its size limit); one bad row must
    not end the read, so the error becomes that row's reason and reading goes on.
    """
    reader = csv.reader(fh)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"unreadable CSV row: {exc}"
            continue
        if any(f.strip() for f in fields):
            yield reader.line_num, fields


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
