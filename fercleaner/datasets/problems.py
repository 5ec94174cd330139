"""The problems table: every input row or file that was not ingested, with why and what to do.

A bad row or image never aborts a read and is never silently dropped: it becomes one row
here. All kinds except `unlabeled_image` stand for a label row, so
`rows_listed == len(samples) + label-row problems` always holds.
"""

from __future__ import annotations

import os
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
)

#: Kinds that are not a label row (an image nobody labelled); they sit outside the reconcile sum.
NON_ROW_KINDS: frozenset[str] = frozenset({"unlabeled_image"})

#: What the user should do, per kind, when the reader has nothing more specific to say.
DEFAULT_FIXES: dict[str, str] = {
    "missing_file": "restore the image, or delete its row from the label file",
    "corrupt_image": "re-download or re-export the image; it cannot be decoded as it is",
    "empty_file": "the file has 0 bytes: re-copy it from the original dataset",
    "not_an_image": "remove the file or replace it with the real image",
    "too_many_pixels": "downscale the image, or raise the limit with max_pixels if it is genuine",
    "unknown_label": "use a canonical class name (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt) or a valid code",
    "excluded_label": "nothing to do: this label is not an emotion class and is left out on purpose",
    "duplicate_id": "delete the repeated row; the first row with this id was kept",
    "malformed_row": "fix the row so it has the fields the layout expects",
    "path_escapes_root": "move the image inside the manifest's folder, or pass allow_outside_root / --allow-outside-root",
    "unlabeled_image": "add a label row for the image, move it into a class folder, or delete it",
    "no_plurality_emotion": "nothing to do: annotators mostly said 'unknown' or 'not a face', so the image has no emotion label",
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
                file=display_path(file, self.root),
                row=row,
                sample_id=sample_id,
                kind=kind,
                reason=reason,
                fix=fix or DEFAULT_FIXES[kind],
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
            frame[column] = frame[column].astype("str")
        frame = frame.sort_values(["file", "row"], kind="stable", na_position="first")
        return frame.reset_index(drop=True)


def display_path(path: str | os.PathLike[str], root: Path) -> str:
    """`path` relative to `root` with forward slashes, or absolute when it lies outside."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        return text.replace(os.sep, "/")
    try:
        return Path(text).relative_to(root).as_posix()
    except ValueError:
        return text


def count_label_row_problems(problems: pd.DataFrame) -> int:
    """How many problems stand for a label row (the reconcile term)."""
    return int((~problems["kind"].isin(sorted(NON_ROW_KINDS))).sum())
