"""The review log's vocabulary: the actions, a reviewer's `Decision` and the `Event` read back.

Pure Python, no SQLite: what a valid decision is and how an event row looks in memory, so
the schema, the store and their callers share one definition.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from fercleaner.errors import FercleanerError

#: Decision actions a reviewer can take; `undo` cancels the reviewer's latest live event.
DECISION_ACTIONS: tuple[str, ...] = ("accept", "keep", "relabel", "ambiguous", "exclude")
ACTIONS: tuple[str, ...] = (*DECISION_ACTIONS, "undo")

#: Columns of an event, in the order of the `events` table and of `Event`'s fields.
EVENT_COLUMNS = [
    "event_id",
    "sample_id",
    "action",
    "label",
    "soft_label",
    "reviewer",
    "decided_at",
    "note",
    "undoes",
]


class ReviewStoreError(FercleanerError):
    """The review store cannot be opened, or a decision is invalid."""


class ReviewStoreBusyError(ReviewStoreError):
    """Another process held the store's write lock past the busy timeout; nothing was written.

    Transient: the store and every decision in it are intact, so the right response is
    to keep what was being written and try again, never to move the file away.
    """


@dataclass(frozen=True)
class Decision:
    """One decision to record.

    Attributes:
        sample_id: the sample decided on (a `sample_id` of the run's scores).
        action: one of `DECISION_ACTIONS`.
        label: the resulting hard label (the proposal for `accept`, the given label for
            `keep`, the chosen class for `relabel`); None for `exclude`.
        soft_label: the soft target over the run's classes (for `ambiguous`), or None.
        note: free text the reviewer typed.
    """

    sample_id: str
    action: str
    label: str | None = None
    soft_label: Sequence[float] | None = None
    note: str = ""


@dataclass(frozen=True)
class Event:
    """One stored event, as read back."""

    event_id: int
    sample_id: str
    action: str
    label: str | None
    soft_label: list[float] | None
    reviewer: str
    decided_at: str
    note: str
    undoes: int | None


def check_reviewer(reviewer: str) -> str:
    """The reviewer name, stripped; an empty one is an error."""
    name = str(reviewer).strip()
    if not name:
        raise ReviewStoreError("reviewer name is empty; pass --reviewer NAME or type a name")
    return name


def decision_row(d: Decision, reviewer: str, now: str) -> tuple:
    """The `events` values (sample_id .. note) of a valid decision; an invalid one is an error."""
    if d.action not in DECISION_ACTIONS:
        raise ReviewStoreError(
            f"unknown review action {d.action!r} for sample {d.sample_id!r}; expected one of "
            f"{', '.join(DECISION_ACTIONS)} (undo has its own method)"
        )
    if d.action != "exclude" and not d.label:
        raise ReviewStoreError(
            f"action {d.action!r} for sample {d.sample_id!r} needs the resulting label"
        )
    if d.action == "ambiguous" and d.soft_label is None:
        raise ReviewStoreError(
            f"action 'ambiguous' for sample {d.sample_id!r} needs a soft label over the classes"
        )
    soft = None if d.soft_label is None else json.dumps(_checked_soft(d))
    return (str(d.sample_id), d.action, d.label, soft, reviewer, now, d.note or "")


def _checked_soft(d: Decision) -> list[float]:
    """The decision's soft label as floats; NaN, negative or all-zero is an error (an
    export would train on it)."""
    values = [float(x) for x in d.soft_label]
    if not all(math.isfinite(x) and x >= 0 for x in values) or not sum(values) > 0:
        raise ReviewStoreError(
            f"the soft label of {d.action!r} for sample {d.sample_id!r} is {values}; it must"
            " be finite, not negative and sum to more than 0 (check the run's scores file)"
        )
    return values


def event_from_row(values: tuple) -> Event:
    """An `Event` from one full row of the `events` table."""
    row = dict(zip(EVENT_COLUMNS, values, strict=True))
    return Event(
        event_id=int(row["event_id"]),
        sample_id=row["sample_id"],
        action=row["action"],
        label=row["label"],
        soft_label=parse_soft(row["soft_label"]),
        reviewer=row["reviewer"],
        decided_at=row["decided_at"],
        note=row["note"],
        undoes=row["undoes"],
    )


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """Full `events` rows as a frame: `EVENT_COLUMNS` as object columns, soft labels parsed."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(EVENT_COLUMNS)
    data = dict(zip(EVENT_COLUMNS, (list(c) for c in columns), strict=True))
    data["soft_label"] = [parse_soft(s) for s in data["soft_label"]]
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in data.items()})
    return frame.astype({"event_id": "int64"})


def parse_soft(text: str | None) -> list[float] | None:
    """A stored soft label (JSON list) back as a list, None kept."""
    return None if text is None else json.loads(text)


def timestamp() -> str:
    """The event time stamp: UTC, ISO 8601 to the microsecond."""
    return datetime.now(UTC).isoformat(timespec="microseconds")
