"""The decision store's SQLite schema, its version check and the derived `current` index.

Everything here must stay byte-compatible with `review.sqlite` files already on disk: a
change to the tables, the indexes or `SCHEMA_VERSION` is a migration, not a refactor.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fercleaner.review.events import ACTIONS, ReviewStoreError

SCHEMA_VERSION = 1

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
    """The store's schema version (0: new); a newer one is an error."""
    version = scalar(conn, "PRAGMA user_version")
    if version not in (0, SCHEMA_VERSION):
        raise ReviewStoreError(
            f"review store {path} has schema version {version}, this "
            f"fercleaner reads version {SCHEMA_VERSION}; upgrade fercleaner"
        )
    return version


def needs_setup(conn: sqlite3.Connection) -> bool:
    """Whether opening must write: a new store, a missing table or index, or an empty
    `current` index beside a non-empty log."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    if scalar(conn, "PRAGMA user_version") == 0 or not names >= SCHEMA_OBJECTS:
        return True
    has_current = scalar(conn, "SELECT EXISTS (SELECT 1 FROM current)")
    return not has_current and bool(scalar(conn, "SELECT EXISTS (SELECT 1 FROM events)"))


def set_up(conn: sqlite3.Connection, path: Path) -> None:
    """Create what is missing, rebuild an empty `current` index, stamp a new store's version.

    Call inside a write transaction, and only when `needs_setup` says so.
    """
    for statement in filter(str.strip, SCHEMA.split(";")):
        conn.execute(statement)
    if scalar(conn, "SELECT COUNT(*) FROM current") == 0:
        rebuild_current(conn)
    if check_version(conn, path) == 0:
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


def scalar(conn: sqlite3.Connection, sql: str) -> int:
    """The first column of the first row of `sql` as an int (NULL as 0)."""
    return int(conn.execute(sql).fetchone()[0] or 0)
