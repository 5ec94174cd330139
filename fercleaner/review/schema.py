"""The decision store's SQLite schema, its version check and the derived `current` index.

Everything here must stay byte-compatible with `review.sqlite` files already on disk: a
change to the tables, the indexes or `SCHEMA_VERSION` is a migration, not a refactor.

Versions (SQLite's `user_version`): 0 is a new file; 1 has today's tables but says
nothing about whether `current` was built from the log; 2 (same tables) says it was.
Opening a version-1 store rebuilds `current` once and stamps 2, so whether opening must
write is read from the version and the table list, never guessed from an empty `current`
(a store whose every decision was undone has an empty `current` beside a non-empty log).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fercleaner.review.events import ACTIONS, ReviewStoreError

SCHEMA_VERSION = 2

#: Versions this fercleaner opens; older ones are migrated by `set_up`.
READABLE_VERSIONS = frozenset({0, 1, SCHEMA_VERSION})

SCHEMA = f"""
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

#: Tables and indexes `SCHEMA` creates.
SCHEMA_OBJECTS = frozenset(
    {"events", "current", "events_by_sample", "events_by_reviewer", "events_undoes"}
)

#: Events that are decisions (not undo) and have not been undone.
LIVE_EVENTS = """
SELECT * FROM events AS e
WHERE e.action != 'undo'
  AND NOT EXISTS (SELECT 1 FROM events AS u WHERE u.undoes = e.event_id)
"""


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The store's schema version (0: new, 1: to migrate); a newer one is an error."""
    version = scalar(conn, "PRAGMA user_version")
    if version not in READABLE_VERSIONS:
        raise ReviewStoreError(
            f"review store {path} has schema version {version}, this "
            f"fercleaner reads versions up to {SCHEMA_VERSION}; upgrade fercleaner"
        )
    return version


def needs_setup(conn: sqlite3.Connection) -> bool:
    """Whether opening must write: a new or older-version store, or a missing table or index.

    Never decided by what the tables hold: an empty `current` beside a non-empty log is a
    store whose every decision was undone, and it opens without the write lock.
    """
    if scalar(conn, "PRAGMA user_version") != SCHEMA_VERSION:
        return True
    return not schema_names(conn) >= SCHEMA_OBJECTS


def set_up(conn: sqlite3.Connection, path: Path) -> None:
    """Create what is missing, build `current` from the log if it is new or was never
    known to be built (versions 0 and 1), then stamp `SCHEMA_VERSION`.

    Call inside a write transaction, and only when `needs_setup` says so. The state is read
    again here, under the write lock: another process may have set the store up meanwhile.
    """
    version = check_version(conn, path)
    had_current = "current" in schema_names(conn)
    for statement in filter(str.strip, SCHEMA.split(";")):
        conn.execute(statement)
    if version < SCHEMA_VERSION or not had_current:
        rebuild_current(conn)
    if version != SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def rebuild_current(conn: sqlite3.Connection, sample_id: str | None = None) -> None:
    """Recompute the `current` index from the log (one sample, or all); in a transaction."""
    where, params = ("AND e.sample_id = ?", (sample_id,)) if sample_id else ("", ())
    if sample_id:
        conn.execute("DELETE FROM current WHERE sample_id = ?", params)
    else:
        conn.execute("DELETE FROM current")
    conn.execute(
        f"INSERT INTO current (sample_id, event_id) SELECT sample_id, MAX(event_id) "
        f"FROM ({LIVE_EVENTS} {where}) GROUP BY sample_id",
        params,
    )


def schema_names(conn: sqlite3.Connection) -> set[str]:
    """Names of the tables and indexes in the store."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


def scalar(conn: sqlite3.Connection, sql: str) -> int:
    """The first column of the first row of `sql` as an int (NULL as 0)."""
    return int(conn.execute(sql).fetchone()[0] or 0)
