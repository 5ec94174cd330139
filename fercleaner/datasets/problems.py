"""The problems table: every input row or file that was not ingested, with why and what to do.

A bad row or image never aborts a read and is never silently dropped: it becomes one row
here. All kinds except those in `NON_ROW_KINDS` stand for a label row, so
`rows_listed == len(samples) + label-row problems` always holds. Text that came from
the file system (names that are not valid UTF-8) is made printable before it is stored,
and control characters in the file column and reasons are escaped (they reach terminals).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: Every problem kind, in the order reports list them.
PROBLEM_KINDS: tuple[str, ...] = (
    "missing_file",
    "corrupt_image",
    "empty_file",
    "not_an_image",
    "too_many_pixels",
    "unknown_label",
    "excluded_label",
    "duplicate_id",
    "malformed_row",
    "path_escapes_root",
    "unlabeled_image",
    "no_plurality_emotion",
    "hidden_file",
    "invalid_file_name",
    "unsupported_pixels",
    "unreadable_folder",
    "votes_misaligned",
    "invalid_votes",
)

#: Kinds that are not a label row; they sit outside the reconcile sum: an image nobody
#: labelled, a folder that could not be listed (how many rows it holds is unknown), and
#: fer2013new.csv votes left off a sample that is itself ingested.
NON_ROW_KINDS: frozenset[str] = frozenset(
    {"unlabeled_image", "unreadable_folder", "votes_misaligned", "invalid_votes"}
)

#: What the user should do, per kind, when the reader has nothing more specific to say.
DEFAULT_FIXES: dict[str, str] = {
    "missing_file": "restore the image, or delete its row from the label file",
    "corrupt_image": "re-download or re-export the image; it cannot be decoded as it is",
    "empty_file": "the file has 0 bytes: re-copy it from the original dataset",
    "not_an_image": "remove the file or replace it with the real image",
    "too_many_pixels": "downscale the image, or raise the limit with max_pixels if it is genuine",
    "unknown_label": (
        "use a canonical class name (neutral, happiness, surprise, sadness, anger, disgust, "
        "fear, contempt) or a valid code"
    ),
    "excluded_label": (
        "nothing to do: this label is not an emotion class and is left out on purpose"
    ),
    "duplicate_id": "delete the repeated row; the first row with this id was kept",
    "malformed_row": "fix the row so it has the fields the layout expects",
    "path_escapes_root": (
        "move the image inside the manifest's folder, or pass allow_outside_root / "
        "--allow-outside-root"
    ),
    "unlabeled_image": "add a label row for the image, move it into a class folder, or delete it",
    "no_plurality_emotion": (
        "nothing to do: annotators mostly said 'unknown' or 'not a face', so the image has "
        "no emotion label"
    ),
    "hidden_file": "rename the file without the leading dot to use it, or delete it",
    "invalid_file_name": (
        "rename the file so its name is valid UTF-8 (e.g. convmv -f latin1 -t utf8)"
    ),
    "unsupported_pixels": "convert the image to 8-bit grey or RGB (PNG or JPEG)",
    "unreadable_folder": (
        "make the folder readable (chmod -R u+rX FOLDER) or move it out of the dataset"
    ),
    "votes_misaligned": (
        "use the fer2013new.csv that belongs to this fer2013.csv (same rows, same order)"
    ),
    "invalid_votes": (
        "fix the row: 10 whole-number vote counts summing to 1-10 (FER+ asked 10 taggers)"
    ),
}

PROBLEM_COLUMNS: tuple[str, ...] = ("file", "row", "sample_id", "kind", "reason", "fix")


@dataclass(frozen=True)
class Problem:
    """One problem row; `file` is relative to the dataset root when it lies inside it."""

    file: str
    row: int | None
    sample_id: str | None
    kind: str
    reason: str
    fix: str


class ProblemLog:
    """Collects problems while a layout reader walks its files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._items: list[Problem] = []

    def add(
        self,
        kind: str,
        *,
        file: str | os.PathLike[str],
        row: int | None = None,
        sample_id: str | None = None,
        reason: str,
        fix: str | None = None,
    ) -> None:
        """Record one problem; `file` may be absolute (it is shown relative to the root)."""
        if kind not in DEFAULT_FIXES:
            raise ValueError(f"unknown problem kind {kind!r}; expected one of {PROBLEM_KINDS}")
        self._items.append(
            Problem(
                file=printable(display_path(file, self.root)),
                row=row,
                sample_id=None if sample_id is None else printable(sample_id),
                kind=kind,
                reason=escape_controls(printable(reason)),
                fix=printable(fix or DEFAULT_FIXES[kind]),
            )
        )

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> tuple[Problem, ...]:
        """The problems recorded so far, in order."""
        return tuple(self._items)

    @property
    def label_row_count(self) -> int:
        """Problems that stand for a label row (everything but unlabeled images)."""
        return sum(p.kind not in NON_ROW_KINDS for p in self._items)

    def to_frame(self) -> pd.DataFrame:
        """The problems table with its fixed columns (row is nullable Int64), by file then row."""
        frame = pd.DataFrame(
            [(p.file, p.row, p.sample_id, p.kind, p.reason, p.fix) for p in self._items],
            columns=list(PROBLEM_COLUMNS),
        )
        frame["row"] = frame["row"].astype("Int64")
        for column in ("file", "sample_id", "kind", "reason", "fix"):
            # astype alone turns a missing sample id into the text "None" (pandas 2)
            present = frame[column].notna()
            frame[column] = frame[column].astype("str").where(present, None)
        frame = frame.sort_values(["file", "row"], kind="stable", na_position="first")
        return frame.reset_index(drop=True)


def display_path(path: str | os.PathLike[str], root: Path) -> str:
    """`path` relative to `root` with forward slashes, or absolute when it lies outside.

    Control characters are escaped (`escape_controls`): a file name holding ESC or a
    carriage return would otherwise recolour, retitle or overwrite the user's terminal.
    """
    text = os.fspath(path)
    if os.path.isabs(text):
        with contextlib.suppress(ValueError):  # outside the root: stays absolute
            text = Path(text).relative_to(root).as_posix()
    else:
        text = text.replace(os.sep, "/")
    return escape_controls(text)


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """Control characters (C0, DEL, C1) of `text` as `\\xNN`, the look `printable` gives bytes."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def printable(text: str) -> str:
    """`text` as valid UTF-8: bytes of a file name that is not UTF-8 become `\\xNN` escapes.

    Python decodes such names with surrogate escapes ('caf\\udce9.png'), which no Parquet
    file, JSON writer or terminal accepts; 'caf\\xe9.png' shows the byte and stays greppable.
    """
    if is_valid_name(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def is_valid_name(text: str) -> bool:
    """Whether a file name (or path) decoded from the file system is valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def count_label_row_problems(problems: pd.DataFrame) -> int:
    """How many problems stand for a label row (the reconcile term)."""
    return int((~problems["kind"].isin(sorted(NON_ROW_KINDS))).sum())
