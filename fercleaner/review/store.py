"""The review decision store: an append-only log of decision events in SQLite (WAL).

Every click in the review app becomes one row, committed before the click returns, so a
refresh, a closed tab or `kill -9` of the server loses nothing that was acknowledged.
Nothing is ever updated or deleted: undo is a new event that points at the event it
cancels, and the current decision of a sample is its last event that was not undone
(last wins across reviewers, history kept).

`current` is a derived index (sample -> its current event), updated in the same
transaction as every event so reading 100k current decisions is a join, not a scan of
the log; it is rebuilt from the log when missing.

Concurrency: writers take SQLite's write lock and wait up to the busy timeout (30 s by
default) for another process to release it; past that a write raises
`ReviewStoreBusyError` and nothing is written (the caller keeps the decision and tries
again: the app does, and says so). Readers never wait in WAL mode, and opening an
existing store only reads, so export and the app's views work while a writer is stuck.

Durability: WAL with `synchronous=FULL` fsyncs the log on every commit. Decisions arrive
at human speed (a batch accept is one transaction), so the fsync costs nothing a reviewer
notices, and unlike `NORMAL` it also survives a power loss, not only a process crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from fercleaner.errors import FercleanerError

#: Decision actions a reviewer can take; `undo` cancels the reviewer's latest live event.
DECISION_ACTIONS: tuple[str, ...] = ("accept", "keep", "relabel", "ambiguous", "exclude")
ACTIONS: tuple[str, ...] = (*DECISION_ACTIONS, "undo")

#: File name of the store inside a run directory.
STORE_FILENAME = "review.sqlite"

_SCHEMA_VERSION = 1
#: How long a write waits for another process to release the store's write lock.
DEFAULT_BUSY_TIMEOUT_S = 30.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    event_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id  TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ({", ".join(repr(a) for a in ACTIONS)})),
    label      TEXT,
    soft_label TEXT,
    reviewer   TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    undoes     INTEGER REFERENCES events(event_id)
);
CREATE INDEX IF NOT EXISTS events_by_sample ON events(sample_id, event_id);
CREATE INDEX IF NOT EXISTS events_by_reviewer ON events(reviewer, event_id);
CREATE UNIQUE INDEX IF NOT EXISTS events_undoes ON events(undoes) WHERE undoes IS NOT NULL;
CREATE TABLE IF NOT EXISTS current (
    sample_id TEXT PRIMARY KEY,
    event_id  INTEGER NOT NULL REFERENCES events(event_id)
) WITHOUT ROWID;
"""

#: Tables and indexes `_SCHEMA` creates.
_SCHEMA_OBJECTS = frozenset(
    {"events", "current", "events_by_sample", "events_by_reviewer", "events_undoes"}
)

#: Events that are decisions (not undo) and have not been undone.
_LIVE = """
SELECT * FROM events AS e
WHERE e.action != 'undo'
  AND NOT EXISTS (SELECT 1 FROM events AS u WHERE u.undoes = e.event_id)
"""

_COLUMNS = [
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


def store_path(run_dir: str | os.PathLike[str]) -> Path:
    """The store file of a run directory."""
    return Path(run_dir) / STORE_FILENAME


class DecisionStore:
    """Append-only decision events of one run, safe for several processes and threads.

    One connection per instance, guarded by a lock (Streamlit calls from many threads);
    other processes coordinate through SQLite's file locks and the busy timeout.

    Args:
        path: the store file (created on first use).
        busy_timeout_s: how long opening and each write wait for another process to
            release the write lock before raising `ReviewStoreBusyError`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = float(busy_timeout_s)
        if not self.path.parent.is_dir():
            raise ReviewStoreError(
                f"cannot open review store {self.path}: folder {self.path.parent} does not "
                "exist; pass an existing run directory"
            )
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, check_same_thread=False
            )
            self._conn.isolation_level = None  # explicit BEGIN/COMMIT below
            self._conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout_s * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=FULL")
            self._check_version()
            if self._needs_setup():  # only then take the write lock: readers never wait
                with self._transaction():
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self._conn.execute(statement)
                    if self._scalar("SELECT COUNT(*) FROM current") == 0:
                        self._rebuild_current()
                    if self._check_version() == 0:
                        self._conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except ReviewStoreBusyError as exc:  # from the schema transaction
            raise ReviewStoreBusyError(self._busy_message("could not open it")) from exc
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc):
                raise ReviewStoreBusyError(self._busy_message("could not open it")) from exc
            raise ReviewStoreError(
                f"cannot open review store {self.path}: {exc}; if the file is not a "
                "fercleaner review store, rename it (keep it: a real store holds the review "
                "decisions) and start again"
            ) from exc
        if str(mode).lower() != "wal":
            raise ReviewStoreError(
                f"review store {self.path} could not switch to WAL mode (got {mode!r}); "
                "put the run directory on a local file system"
            )

    # -- writing -------------------------------------------------------------------------

    def record(self, decision: Decision, *, reviewer: str) -> int:
        """Append one decision and return its event id once it is durable on disk."""
        return self.record_many([decision], reviewer=reviewer)[0]

    def record_many(self, decisions: Iterable[Decision], *, reviewer: str) -> list[int]:
        """Append decisions in one transaction (all or none); returns their event ids."""
        reviewer = _check_reviewer(reviewer)
        now = _now()
        rows = [_row(d, reviewer, now) for d in decisions]
        with self._lock, self._transaction():
            ids = []
            for row in rows:
                cur = self._conn.execute(
                    "INSERT INTO events (sample_id, action, label, soft_label, reviewer, "
                    "decided_at, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                ids.append(int(cur.lastrowid))
                self._conn.execute(
                    "INSERT INTO current (sample_id, event_id) VALUES (?, ?) "
                    "ON CONFLICT(sample_id) DO UPDATE SET event_id = excluded.event_id",
                    (row[0], ids[-1]),
                )
        return ids

    def undo(self, sample_id: str, *, reviewer: str, note: str = "") -> Event | None:
        """Undo `reviewer`'s latest live decision on `sample_id`; None if there is none."""
        return self._undo(
            "AND sample_id = ? AND reviewer = ?", (sample_id, _check_reviewer(reviewer)), note
        )

    def undo_last(self, *, reviewer: str, note: str = "") -> Event | None:
        """Undo `reviewer`'s most recent live decision on any sample; None if there is none.

        Reads the store, not the browser session, so undo still works after a reload.
        """
        return self._undo("AND reviewer = ?", (_check_reviewer(reviewer),), note)

    def _undo(self, where: str, params: tuple, note: str) -> Event | None:
        with self._lock, self._transaction():
            row = self._conn.execute(
                f"SELECT * FROM ({_LIVE}) WHERE 1 {where} ORDER BY event_id DESC LIMIT 1",
                params,
            ).fetchone()
            if row is None:
                return None
            target = _event(row)
            self._conn.execute(
                "INSERT INTO events (sample_id, action, label, soft_label, reviewer, "
                "decided_at, note, undoes) VALUES (?, 'undo', NULL, NULL, ?, ?, ?, ?)",
                (target.sample_id, target.reviewer, _now(), note, target.event_id),
            )
            self._rebuild_current(target.sample_id)
        return target

    # -- reading -------------------------------------------------------------------------

    def last_event_id(self) -> int:
        """The newest event id (0 when empty): a cheap version stamp for caches."""
        with self._lock:
            row = self._conn.execute("SELECT MAX(event_id) FROM events").fetchone()
        return int(row[0] or 0)

    def history(self, sample_id: str | None = None) -> pd.DataFrame:
        """Every event (undo included) in order, optionally for one sample."""
        sql, params = "SELECT * FROM events", ()
        if sample_id is not None:
            sql, params = sql + " WHERE sample_id = ?", (sample_id,)
        return self._frame(sql + " ORDER BY event_id", params)

    def recent(self, *, limit: int = 10) -> pd.DataFrame:
        """The newest `limit` events (undo included), newest first."""
        return self._frame("SELECT * FROM events ORDER BY event_id DESC LIMIT ?", (int(limit),))

    def decided_ids(self) -> list[str]:
        """Sample ids that have a current decision (fast: reads the `current` index)."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT sample_id FROM current")]

    def current_decisions_of(self, sample_ids: Sequence[str]) -> pd.DataFrame:
        """The current decisions of a few samples (indexed lookup; same columns as below)."""
        ids = [str(s) for s in sample_ids]
        if not ids:
            return self.current_decisions().iloc[0:0]
        marks = ", ".join("?" * len(ids))
        return self._frame(
            "SELECT e.* FROM current AS c JOIN events AS e ON e.event_id = c.event_id "
            f"WHERE c.sample_id IN ({marks}) ORDER BY e.event_id",
            tuple(ids),
        ).drop(columns=["undoes"])

    def current_decisions(self, *, reviewers: Sequence[str] | None = None) -> pd.DataFrame:
        """The current decision per sample: its last live event (one row per decided sample).

        Args:
            reviewers: count only these reviewers' events (e.g. to export one person's
                review); None counts everyone.

        Returns:
            Columns `event_id, sample_id, action, label, soft_label (list|None), reviewer,
            decided_at, note`, one row per sample, ordered by `event_id`.
        """
        if reviewers is None:
            return self._frame(
                "SELECT e.* FROM current AS c JOIN events AS e ON e.event_id = c.event_id "
                "ORDER BY e.event_id",
                (),
            ).drop(columns=["undoes"])
        live, params = _LIVE, ()
        if reviewers is not None:
            names = [_check_reviewer(r) for r in reviewers]
            live += f" AND e.reviewer IN ({', '.join('?' * len(names))})"
            params = tuple(names)
        sql = (
            f"WITH live AS ({live}) SELECT * FROM live WHERE event_id IN "
            "(SELECT MAX(event_id) FROM live GROUP BY sample_id) ORDER BY event_id"
        )
        return self._frame(sql, params).drop(columns=["undoes"])

    def reviewer_decisions(self) -> pd.DataFrame:
        """Each reviewer's current decision per sample (one row per reviewer and sample)."""
        sql = (
            f"WITH live AS ({_LIVE}) SELECT * FROM live WHERE event_id IN "
            "(SELECT MAX(event_id) FROM live GROUP BY sample_id, reviewer) ORDER BY event_id"
        )
        return self._frame(sql, ()).drop(columns=["undoes"])

    def close(self) -> None:
        """Close the connection (the data is already on disk)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> DecisionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE takes the write lock up front, so read-then-write is atomic.

        A lock held by another process past the busy timeout raises ReviewStoreBusyError,
        any other SQLite failure ReviewStoreError; either way nothing was written.
        """
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise ReviewStoreBusyError(self._busy_message("nothing was written")) from exc
            raise ReviewStoreError(
                f"cannot write to review store {self.path}: {exc}; nothing was written"
            ) from exc
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                if _is_busy(exc):
                    raise ReviewStoreBusyError(self._busy_message("nothing was written")) from exc
                raise ReviewStoreError(
                    f"cannot write to review store {self.path}: {exc}; nothing was written"
                ) from exc
            raise

    def _busy_message(self, outcome: str) -> str:
        return (
            f"review store {self.path} is locked by another process (waited "
            f"{self.busy_timeout_s:g} s for its write lock); {outcome}. Every decision in the "
            "store is intact: wait for the other writer (another `fercleaner review`, an "
            "export, a backup or an sqlite3 shell holding the file open) to finish, then try "
            "again"
        )

    def _check_version(self) -> int:
        """The store's schema version (0: new); a newer one is an error."""
        version = self._scalar("PRAGMA user_version")
        if version not in (0, _SCHEMA_VERSION):
            raise ReviewStoreError(
                f"review store {self.path} has schema version {version}, this "
                f"fercleaner reads version {_SCHEMA_VERSION}; upgrade fercleaner"
            )
        return version

    def _needs_setup(self) -> bool:
        """Whether opening must write: a new store, a missing table or index, or an empty
        `current` index beside a non-empty log."""
        names = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")}
        if self._scalar("PRAGMA user_version") == 0 or not names >= _SCHEMA_OBJECTS:
            return True
        has_current = self._scalar("SELECT EXISTS (SELECT 1 FROM current)")
        return not has_current and bool(self._scalar("SELECT EXISTS (SELECT 1 FROM events)"))

    def _scalar(self, sql: str) -> int:
        return int(self._conn.execute(sql).fetchone()[0] or 0)

    def _rebuild_current(self, sample_id: str | None = None) -> None:
        """Recompute the `current` index from the log (one sample, or all); in a transaction."""
        where, params = ("AND e.sample_id = ?", (sample_id,)) if sample_id else ("", ())
        if sample_id:
            self._conn.execute("DELETE FROM current WHERE sample_id = ?", params)
        else:
            self._conn.execute("DELETE FROM current")
        self._conn.execute(
            f"INSERT INTO current (sample_id, event_id) SELECT sample_id, MAX(event_id) "
            f"FROM ({_LIVE} {where}) GROUP BY sample_id",
            params,
        )

    def _frame(self, sql: str, params: tuple) -> pd.DataFrame:
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(_COLUMNS)
        data = dict(zip(_COLUMNS, (list(c) for c in columns), strict=True))
        data["soft_label"] = [_parse_soft(s) for s in data["soft_label"]]
        frame = pd.DataFrame(
            {name: pd.Series(values, dtype=object) for name, values in data.items()}
        )
        return frame.astype({"event_id": "int64"})


def outcome_of(action: str, label: str | None) -> str:
    """What a decision means for the dataset, for comparing reviewers.

    `accept`, `keep` and `relabel` that end on the same class agree; `ambiguous` and
    `exclude` are outcomes of their own.
    """
    if action in ("ambiguous", "exclude"):
        return action
    return str(label)


def estimate_reviewer_agreement(reviewer_decisions: pd.DataFrame) -> pd.DataFrame:
    """Agreement between every pair of reviewers over the samples both decided.

    Args:
        reviewer_decisions: `DecisionStore.reviewer_decisions()`.

    Returns:
        One row per reviewer pair with at least one shared sample: `reviewer_a`,
        `reviewer_b`, `n_shared`, `n_agree`, `agreement` (fraction in [0, 1]) and
        `kappa` (Cohen's kappa over outcomes; NaN when chance agreement is 1).
    """
    columns = ["reviewer_a", "reviewer_b", "n_shared", "n_agree", "agreement", "kappa"]
    if reviewer_decisions.empty:
        return pd.DataFrame(columns=columns)
    table = reviewer_decisions.assign(
        outcome=[
            outcome_of(a, lab)
            for a, lab in zip(
                reviewer_decisions["action"], reviewer_decisions["label"], strict=True
            )
        ]
    ).pivot(index="sample_id", columns="reviewer", values="outcome")
    names = sorted(table.columns)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = table[[a, b]].dropna()
            if both.empty:
                continue
            agree = both[a] == both[b]
            p_o = float(agree.mean())
            pa = both[a].value_counts(normalize=True)
            pb = both[b].value_counts(normalize=True)
            p_e = float((pa * pb.reindex(pa.index, fill_value=0.0)).sum())
            kappa = (p_o - p_e) / (1.0 - p_e) if p_e < 1.0 else float("nan")
            rows.append((a, b, len(both), int(agree.sum()), p_o, kappa))
    return pd.DataFrame(rows, columns=columns)


def _is_busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite gave up waiting for a lock another connection holds (SQLITE_BUSY/LOCKED)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return True
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def _check_reviewer(reviewer: str) -> str:
    name = str(reviewer).strip()
    if not name:
        raise ReviewStoreError("reviewer name is empty; pass --reviewer NAME or type a name")
    return name


def _row(d: Decision, reviewer: str, now: str) -> tuple:
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
    soft = None if d.soft_label is None else json.dumps([float(x) for x in d.soft_label])
    return (str(d.sample_id), d.action, d.label, soft, reviewer, now, d.note or "")


def _event(values: tuple) -> Event:
    row = dict(zip(_COLUMNS, values, strict=True))
    return Event(
        event_id=int(row["event_id"]),
        sample_id=row["sample_id"],
        action=row["action"],
        label=row["label"],
        soft_label=_parse_soft(row["soft_label"]),
        reviewer=row["reviewer"],
        decided_at=row["decided_at"],
        note=row["note"],
        undoes=row["undoes"],
    )


def _parse_soft(text: str | None) -> list[float] | None:
    return None if text is None else json.loads(text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
