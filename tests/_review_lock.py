"""Hold a review store's write lock from another process, like a second writer or a stuck tool."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

_HOLDER = (
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "conn.execute('BEGIN EXCLUSIVE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"  # hold the lock until the test closes our stdin
)


@contextlib.contextmanager
def store_locked(path: Path) -> Iterator[None]:
    """Another process holds `path`'s write lock until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def count_events(path: Path) -> int:
    """Events in the store, read without taking the write lock (WAL readers never wait)."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()
