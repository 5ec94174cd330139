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

This module holds the connection, its transactions and the reads and writes; the
vocabulary is in `review.events`, the schema in `review.schema` and the agreement
statistics in `review.agreement` (all re-exported here).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from fercleaner.review import schema
from fercleaner.review.agreement import estimate_reviewer_agreement, outcome_of
from fercleaner.review.events import (
    ACTIONS,
    DECISION_ACTIONS,
    Decision,
    Event,
    ReviewStoreBusyError,
    ReviewStoreError,
    check_reviewer,
    decision_row,
    event_from_row,
    events_frame,
    timestamp,
)
from fercleaner.review.schema import LIVE_EVENTS
from fercleaner.runs.layout import STORE_FILE

__all__ = [
    "ACTIONS",
    "DECISION_ACTIONS",
    "DEFAULT_BUSY_TIMEOUT_S",
    "STORE_FILENAME",
    "Decision",
    "DecisionStore",
    "Event",
    "ReviewStoreBusyError",
    "ReviewStoreError",
    "estimate_reviewer_agreement",
    "outcome_of",
    "store_path",
]

#: File name of the store inside a run directory.
STORE_FILENAME = STORE_FILE  # the run directory's name for it (fercleaner.runs)

#: How long a write waits for another process to release the store's write lock.
DEFAULT_BUSY_TIMEOUT_S = 30.0

#: Sample ids per `current_decisions_of` query (SQLite allows 32,766 bound values).
IDS_PER_QUERY = 10_000

#: Most of the store file SQLite reads through a memory map when asked (`memory_map`):
#: address space, its pages the OS's file cache; a million decisions take ~150 MB.
MMAP_BYTES = 1 << 30


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
        memory_map: read the file through a memory map (`MMAP_BYTES`): faster random
            reads, such as the review app's Overview counting every current decision
            (docs/benchmarks.md, "Scale"). The mapped pages count in the process's
            resident memory, so a one-pass reader such as export leaves it off.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        memory_map: bool = False,
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
            if memory_map:
                self._conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            schema.check_version(self._conn, self.path)
            if schema.needs_setup(self._conn):  # only then take the write lock: readers never wait
                with self._transaction():
                    schema.set_up(self._conn, self.path)
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
        reviewer = check_reviewer(reviewer)
        now = timestamp()
        rows = [decision_row(d, reviewer, now) for d in decisions]
        with self._lock, self._transaction():
            return self._append(rows)

    def record_undecided(
        self, decisions: Iterable[Decision], *, reviewer: str
    ) -> tuple[list[int], pd.DataFrame]:
        """Append the decisions on samples no other reviewer has decided, in one transaction.

        Who decided is read under the write lock, so a decision another reviewer makes
        meanwhile is never replaced: for batch accept, where nobody looked at it.

        Returns:
            (event ids of what was recorded, the other reviewers' current decisions that
            were left standing; columns as `current_decisions`).
        """
        reviewer = check_reviewer(reviewer)
        decisions = list(decisions)
        now = timestamp()
        with self._lock, self._transaction():
            current = self.current_decisions_of([d.sample_id for d in decisions])
            taken = current[current["reviewer"] != reviewer].reset_index(drop=True)
            left = set(taken["sample_id"])
            rows = [decision_row(d, reviewer, now) for d in decisions if d.sample_id not in left]
            return self._append(rows), taken

    def _append(self, rows: list[tuple]) -> list[int]:
        """Insert decision rows and point `current` at them (inside a write transaction)."""
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
            "AND sample_id = ? AND reviewer = ?", (sample_id, check_reviewer(reviewer)), note
        )

    def undo_last(self, *, reviewer: str, note: str = "") -> Event | None:
        """Undo `reviewer`'s most recent live decision on any sample; None if there is none.

        Reads the store, not the browser session, so undo still works after a reload.
        """
        return self._undo("AND reviewer = ?", (check_reviewer(reviewer),), note)

    def _undo(self, where: str, params: tuple, note: str) -> Event | None:
        with self._lock, self._transaction():
            row = self._conn.execute(
                f"SELECT * FROM ({LIVE_EVENTS}) WHERE 1 {where} ORDER BY event_id DESC LIMIT 1",
                params,
            ).fetchone()
            if row is None:
                return None
            target = event_from_row(row)
            self._conn.execute(
                "INSERT INTO events (sample_id, action, label, soft_label, reviewer, "
                "decided_at, note, undoes) VALUES (?, 'undo', NULL, NULL, ?, ?, ?, ?)",
                (target.sample_id, target.reviewer, timestamp(), note, target.event_id),
            )
            schema.rebuild_current(self._conn, target.sample_id)
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

    def decided_changes_since(self, event_id: int) -> tuple[int, dict[str, bool]]:
        """What changed in `decided_ids()` after event `event_id` (an indexed range read).

        Returns:
            (newest event id read, {sample_id: whether it has a current decision now})
            for every sample an event after `event_id` touched (decisions and undos).
            Applying these to the decided ids as of `event_id` gives the decided ids as
            of the returned event id, without reading the other samples.
        """
        sql = (
            "SELECT e.event_id, e.sample_id, "
            "EXISTS (SELECT 1 FROM current AS c WHERE c.sample_id = e.sample_id) "
            "FROM events AS e WHERE e.event_id > ? ORDER BY e.event_id"
        )
        with self._lock:
            rows = self._conn.execute(sql, (int(event_id),)).fetchall()
        newest = int(rows[-1][0]) if rows else int(event_id)
        return newest, {sample_id: bool(decided) for _, sample_id, decided in rows}

    def current_decisions_of(
        self, sample_ids: Sequence[str], *, reviewers: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The current decisions of the given samples (columns as `current_decisions`).

        Indexed lookups by sample, `IDS_PER_QUERY` ids per query: a 65k-id batch of an
        export costs milliseconds however many decisions the store holds, with or
        without a reviewer filter.
        """
        ids = [str(s) for s in sample_ids]
        parts = [
            self._current(ids[start : start + IDS_PER_QUERY], reviewers)
            for start in range(0, len(ids), IDS_PER_QUERY)
        ] or [self._current([], reviewers)]
        if len(parts) == 1:
            return parts[0]  # ordered by event_id in SQL
        frame = pd.concat(parts, ignore_index=True)
        return frame.sort_values("event_id", kind="stable", ignore_index=True)

    def current_decisions(self, *, reviewers: Sequence[str] | None = None) -> pd.DataFrame:
        """The current decision per sample: its last live event (one row per decided sample).

        Args:
            reviewers: count only these reviewers' events (e.g. to export one person's
                review); None counts everyone.

        Returns:
            Columns `event_id, sample_id, action, label, soft_label (list|None), reviewer,
            decided_at, note`, one row per sample, ordered by `event_id`.
        """
        return self._current(None, reviewers)

    def count_current_decisions(self, *, reviewers: Sequence[str] | None = None) -> int:
        """How many samples have a current decision (`len(current_decisions(...))`, counted
        inside SQLite)."""
        if reviewers is None:
            sql, params = "SELECT COUNT(*) FROM current", ()
        else:
            live, params = self._live_of(reviewers)
            sql = f"SELECT COUNT(DISTINCT sample_id) FROM ({live})"
        with self._lock:
            return int(self._conn.execute(sql, params).fetchone()[0])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read everything inside from one state of the store (a read transaction: a
        decision made meanwhile in another process is not seen halfway through an export).

        For reads only: a write inside would start a second transaction and fail.
        """
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.execute("SELECT COUNT(*) FROM current").fetchone()  # pins the state
                yield
            finally:
                self._conn.execute("COMMIT")

    def _current(self, ids: list[str] | None, reviewers: Sequence[str] | None) -> pd.DataFrame:
        """Current decisions of the samples `ids` (None: of every sample)."""
        among = "" if ids is None else f" IN ({', '.join('?' * len(ids))})"
        params = () if ids is None else tuple(ids)
        if reviewers is None:  # the `current` index, looked up by sample
            where = "" if ids is None else f"WHERE c.sample_id{among} "
            sql = (
                "SELECT e.* FROM current AS c JOIN events AS e ON e.event_id = c.event_id "
                f"{where}ORDER BY e.event_id"
            )
            return self._frame(sql, params).drop(columns=["undoes"])
        live, names = self._live_of(reviewers, by_sample=ids is not None)
        if ids is not None:
            live += f" AND e.sample_id{among}"
        sql = (
            f"WITH live AS ({live}) SELECT * FROM live WHERE event_id IN "
            "(SELECT MAX(event_id) FROM live GROUP BY sample_id) ORDER BY event_id"
        )
        return self._frame(sql, names + params).drop(columns=["undoes"])

    @staticmethod
    def _live_of(reviewers: Sequence[str], *, by_sample: bool = False) -> tuple[str, tuple]:
        """The live events of `reviewers` (SQL and its parameters).

        `by_sample`: the caller adds a sample condition, and the reviewer condition gets a
        `+` that keeps SQLite off the reviewer index (which would scan every event of
        those reviewers, for each batch of an export).
        """
        names = tuple(check_reviewer(r) for r in reviewers)
        column = "+e.reviewer" if by_sample else "e.reviewer"
        return f"{LIVE_EVENTS} AND {column} IN ({', '.join('?' * len(names))})", names

    def reviewer_decisions(self, *, shared_only: bool = False) -> pd.DataFrame:
        """Each reviewer's current decision per sample (one row per reviewer and sample).

        Args:
            shared_only: only samples that two or more reviewers decided (all that
                `estimate_reviewer_agreement` uses); with a single reviewer in the store
                this reads no rows at all.
        """
        live, params = LIVE_EVENTS, ()
        if shared_only:
            if len(self.list_reviewers()) < 2:
                return self._frame("SELECT * FROM events WHERE 0", ()).drop(columns=["undoes"])
            live += (
                " AND e.sample_id IN (SELECT sample_id FROM events WHERE action != 'undo'"
                " GROUP BY sample_id HAVING COUNT(DISTINCT reviewer) > 1)"
            )
        sql = (
            f"WITH live AS ({live}) SELECT * FROM live WHERE event_id IN "
            "(SELECT MAX(event_id) FROM live GROUP BY sample_id, reviewer) ORDER BY event_id"
        )
        return self._frame(sql, params).drop(columns=["undoes"])

    def list_reviewers(self) -> list[str]:
        """Every reviewer with an event in the store, sorted (reads the reviewer index only)."""
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT reviewer FROM events ORDER BY reviewer")
            return [r[0] for r in rows]

    def count_current_actions(self) -> dict[str, int]:
        """How many current decisions each action has ({action: count}, sorted by action).

        Counted inside SQLite: no decision row is read into Python, so the Overview stays
        fast with a million decisions in the store.
        """
        sql = (
            "SELECT e.action, COUNT(*) FROM current AS c JOIN events AS e "
            "ON e.event_id = c.event_id GROUP BY e.action ORDER BY e.action"
        )
        with self._lock:
            return {str(a): int(n) for a, n in self._conn.execute(sql)}

    def count_reviewer_decisions(self) -> pd.DataFrame:
        """Columns `reviewer`, `decisions`: how many samples each reviewer currently decides.

        The same counts as `reviewer_decisions()` grouped by reviewer (reviewers whose
        every decision was undone are left out), counted inside SQLite; with a single
        reviewer it is the size of the `current` index.
        """
        reviewers = self.list_reviewers()
        with self._lock:
            if len(reviewers) == 1:
                n = schema.scalar(self._conn, "SELECT COUNT(*) FROM current")
                rows = [(reviewers[0], n)] if n else []
            else:
                rows = self._conn.execute(
                    f"WITH live AS ({LIVE_EVENTS}) SELECT reviewer, COUNT(DISTINCT sample_id) "
                    "FROM live GROUP BY reviewer ORDER BY reviewer"
                ).fetchall()
        frame = pd.DataFrame(rows, columns=["reviewer", "decisions"])
        return frame.astype({"reviewer": object, "decisions": "int64"})

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

    def _frame(self, sql: str, params: tuple) -> pd.DataFrame:
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return events_frame(rows)


def _is_busy(exc: sqlite3.Error) -> bool:
    """Whether SQLite gave up waiting for a lock another connection holds (SQLITE_BUSY/LOCKED)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return True
    return "database is locked" in str(exc) or "database table is locked" in str(exc)
