"""The decision store: last decision wins, history kept, undo, two writers, kill -9 safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _review_lock import count_events, store_locked

from fercleaner.review.schema import SCHEMA_VERSION
from fercleaner.review.store import (
    Decision,
    DecisionStore,
    ReviewStoreBusyError,
    ReviewStoreError,
    estimate_reviewer_agreement,
)


@pytest.fixture
def store(tmp_path: Path) -> DecisionStore:
    with DecisionStore(tmp_path / "review.sqlite") as s:
        yield s


def test_store_is_wal_with_full_sync(store: DecisionStore) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 0  # export's one pass: no map


def test_the_app_reads_its_store_through_a_memory_map(tmp_path: Path) -> None:
    from run_fixtures import make_run

    from fercleaner.app.data import get_store

    store = get_store(str(make_run(tmp_path, n=8)))  # the app's handle, one per server
    assert store._conn.execute("PRAGMA mmap_size").fetchone()[0] > 0


def test_last_decision_wins_and_history_is_kept(store: DecisionStore) -> None:
    store.record(Decision("a", "accept", "fear"), reviewer="ann")
    store.record(Decision("a", "keep", "sadness", note="on second look"), reviewer="bob")
    store.record(Decision("b", "exclude"), reviewer="ann")
    current = store.current_decisions().set_index("sample_id")
    assert current.loc["a", "action"] == "keep"
    assert current.loc["a", "reviewer"] == "bob"
    assert current.loc["a", "note"] == "on second look"
    assert current.loc["b", "action"] == "exclude"
    assert current.loc["b", "label"] is None
    assert list(store.history("a")["action"]) == ["accept", "keep"]
    only_ann = store.current_decisions(reviewers=["ann"]).set_index("sample_id")
    assert only_ann.loc["a", "action"] == "accept"


def test_record_undecided_leaves_other_reviewers_decisions_standing(
    store: DecisionStore,
) -> None:
    """Batch accept: read who decided and write in one transaction, never over bob."""
    store.record(Decision("b", "keep", "happiness"), reviewer="bob")
    store.record(Decision("c", "exclude"), reviewer="ann")  # ann's own: hers to replace
    batch = [Decision(s, "accept", "surprise") for s in ("a", "b", "c")]
    ids, left = store.record_undecided(batch, reviewer="ann")
    assert len(ids) == 2 and left["sample_id"].tolist() == ["b"]
    assert left["reviewer"].tolist() == ["bob"]
    current = store.current_decisions().set_index("sample_id")
    assert current["reviewer"].to_dict() == {"a": "ann", "b": "bob", "c": "ann"}
    assert current.loc["c", "action"] == "accept"
    assert list(store.history("b")["reviewer"]) == ["bob"]
    again, left = store.record_undecided([], reviewer="ann")
    assert again == [] and left.empty


def test_undo_is_an_event_and_restores_the_previous_decision(store: DecisionStore) -> None:
    store.record(Decision("a", "accept", "fear"), reviewer="ann")
    store.record(Decision("a", "relabel", "anger"), reviewer="ann")
    undone = store.undo("a", reviewer="ann")
    assert undone is not None and undone.action == "relabel"
    assert store.current_decisions().set_index("sample_id").loc["a", "label"] == "fear"
    assert store.undo("a", reviewer="ann").action == "accept"
    assert store.current_decisions().empty
    assert store.undo("a", reviewer="ann") is None  # nothing left
    history = store.history("a")
    assert list(history["action"]) == ["accept", "relabel", "undo", "undo"]
    assert list(history["undoes"].iloc[2:]) == [2, 1]


def test_undo_only_touches_the_reviewers_own_decisions(store: DecisionStore) -> None:
    store.record(Decision("a", "accept", "fear"), reviewer="ann")
    store.record(Decision("b", "keep", "fear"), reviewer="bob")
    assert store.undo_last(reviewer="ann").sample_id == "a"
    assert store.undo_last(reviewer="ann") is None
    assert list(store.current_decisions()["sample_id"]) == ["b"]


def test_ambiguous_keeps_the_soft_label(store: DecisionStore) -> None:
    store.record(Decision("a", "ambiguous", "fear", soft_label=[0.4, 0.6]), reviewer="ann")
    assert store.current_decisions()["soft_label"].iloc[0] == [0.4, 0.6]


@pytest.mark.parametrize(
    ("decision", "reviewer", "match"),
    [
        (Decision("a", "destroy", "x"), "ann", "unknown review action 'destroy'"),
        (Decision("a", "undo", "x"), "ann", "unknown review action 'undo'"),
        (Decision("a", "relabel", None), "ann", "needs the resulting label"),
        (
            Decision("a", "ambiguous", "fear", soft_label=[0.5, float("nan")]),
            "ann",
            r"soft label of 'ambiguous' for sample 'a' is \[0.5, nan\]; it must be finite",
        ),
        (Decision("a", "ambiguous", "fear", soft_label=[1.2, -0.2]), "ann", "not negative"),
        (Decision("a", "ambiguous", "fear", soft_label=[0.0, 0.0]), "ann", "sum to more than 0"),
        (Decision("a", "ambiguous", "x"), "ann", "needs a soft label"),
        (Decision("a", "keep", "x"), "  ", "reviewer name is empty"),
    ],
)
def test_invalid_decisions_are_refused(store, decision, reviewer, match) -> None:
    with pytest.raises(ReviewStoreError, match=match):
        store.record(decision, reviewer=reviewer)
    assert store.history().empty


def test_a_foreign_file_is_refused_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "review.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ReviewStoreError, match=str(bad)):
        DecisionStore(bad)


def test_reviewer_agreement_counts_shared_samples(store: DecisionStore) -> None:
    store.record(Decision("a", "accept", "fear"), reviewer="ann")
    store.record(Decision("a", "relabel", "fear"), reviewer="bob")  # same outcome
    store.record(Decision("b", "exclude"), reviewer="ann")
    store.record(Decision("b", "keep", "anger"), reviewer="bob")  # disagree
    store.record(Decision("c", "keep", "anger"), reviewer="ann")  # only one reviewer
    agreement = estimate_reviewer_agreement(store.reviewer_decisions())
    assert len(agreement) == 1
    row = agreement.iloc[0]
    assert (row.reviewer_a, row.reviewer_b, row.n_shared, row.n_agree) == ("ann", "bob", 2, 1)
    assert row.agreement == pytest.approx(0.5)
    # outcomes ann {fear, exclude}, bob {fear, anger}: p_e = 0.5*0.5 = 0.25
    assert row.kappa == pytest.approx((0.5 - 0.25) / 0.75)


_WRITER = textwrap.dedent(
    """
    import sys
    from fercleaner.review.store import Decision, DecisionStore
    path, reviewer, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = DecisionStore(path)
    for i in range(n):
        event_id = store.record(
            Decision(f"s{i % 50}", "relabel", f"{reviewer}-{i}"), reviewer=reviewer
        )
        print(event_id, f"{reviewer}-{i}", flush=True)
    """
)


def test_two_writer_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite"
    DecisionStore(path).close()
    n = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), name, str(n)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("ann", "bob")
    ]
    acked = {}
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        for line in out.splitlines():
            event_id, label = line.split()
            acked[int(event_id)] = label
    assert len(acked) == 2 * n  # every write got its own event id
    with DecisionStore(path) as store:
        history = store.history()
        assert dict(zip(history["event_id"], history["label"], strict=True)) == acked
        # the current decision of each sample is the one with the highest event id
        current = store.current_decisions().set_index("sample_id")["event_id"]
        expected = history.groupby("sample_id")["event_id"].max()
        assert current.sort_index().tolist() == expected.sort_index().tolist()


def test_kill_9_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), "ann", "100000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked = {}
    try:
        for line in proc.stdout:
            event_id, label = line.split()
            acked[int(event_id)] = label
            if len(acked) >= 60:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with DecisionStore(path) as store:
        stored = dict(zip(store.history()["event_id"], store.history()["label"], strict=True))
    assert len(acked) >= 60
    assert all(stored.get(event_id) == label for event_id, label in acked.items())


def test_current_index_matches_the_log_and_is_rebuilt_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite"
    with DecisionStore(path) as store:
        for i in range(40):
            who = ("ann", "bob")[i % 2]
            store.record(Decision(f"s{i % 7}", "relabel", f"c{i}"), reviewer=who)
            if i % 5 == 4:
                store.undo_last(reviewer=who)
        store.undo("s3", reviewer="bob")
        fast = store.current_decisions()
        from_log = store.current_decisions(reviewers=["ann", "bob"])  # recomputed from the log
        assert fast.equals(from_log)
        assert sorted(store.decided_ids()) == sorted(fast["sample_id"])
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE current")
    conn.commit()
    conn.close()
    with DecisionStore(path) as store:
        assert store.current_decisions().equals(fast)


def _stamp(path: Path, version: int, *, empty_current: bool = False) -> None:
    """Set the store's schema version (and empty its `current` index) behind its back."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={version}")
    if empty_current:
        conn.execute("DELETE FROM current")
    conn.commit()
    conn.close()


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_store_whose_every_decision_was_undone_opens_without_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "review.sqlite"
    with DecisionStore(path) as store:
        store.record(Decision("a", "accept", "fear"), reviewer="ann")
        store.undo("a", reviewer="ann")  # `current` is empty, the log is not
    with store_locked(path), DecisionStore(path, busy_timeout_s=0.2) as store:
        assert store.current_decisions().empty and store.decided_ids() == []
        assert list(store.history()["action"]) == ["accept", "undo"]


@pytest.mark.parametrize("empty_current", [False, True], ids=["current-kept", "current-empty"])
def test_a_version_1_store_is_migrated_once_and_keeps_its_decisions(
    tmp_path: Path, empty_current: bool
) -> None:
    path = tmp_path / "review.sqlite"
    with DecisionStore(path) as store:
        store.record(Decision("a", "accept", "fear"), reviewer="ann")
        store.record(Decision("b", "relabel", "sadness"), reviewer="bob")
        store.record(Decision("c", "keep", "happy"), reviewer="ann")
        store.undo("c", reviewer="ann")
        expected = store.current_decisions()
    # What fercleaner wrote before version 2: the same tables, stamped 1; its `current`
    # may also be empty beside live decisions (it was rebuilt on open when empty).
    _stamp(path, 1, empty_current=empty_current)
    with store_locked(path), pytest.raises(ReviewStoreBusyError):
        DecisionStore(path, busy_timeout_s=0.2)  # migrating writes, so it waits for the lock
    assert _user_version(path) == 1 and count_events(path) == 4  # nothing half-done
    with DecisionStore(path) as store:
        assert store.current_decisions().equals(expected)
    assert _user_version(path) == SCHEMA_VERSION
    with store_locked(path), DecisionStore(path, busy_timeout_s=0.2) as store:  # migrated once
        assert store.current_decisions().equals(expected)
        assert sorted(store.decided_ids()) == ["a", "b"]
    assert count_events(path) == 4


def test_a_store_from_a_newer_fercleaner_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "review.sqlite"
    DecisionStore(path).close()
    _stamp(path, SCHEMA_VERSION + 1)
    with pytest.raises(ReviewStoreError, match="upgrade fercleaner") as err:
        DecisionStore(path)
    assert str(path) in str(err.value)


def test_opening_a_store_locked_past_the_timeout_is_busy_never_move_it_away(
    tmp_path: Path,
) -> None:
    path = tmp_path / "review.sqlite"  # new: opening must create the schema, so it must write
    with store_locked(path), pytest.raises(ReviewStoreBusyError) as err:
        DecisionStore(path, busy_timeout_s=0.2)
    message = str(err.value)
    assert str(path) in message and "locked by another process" in message
    assert "move it away" not in message and "intact" in message
    assert isinstance(err.value, ReviewStoreError)  # the CLI maps it to one line


def test_a_locked_store_opens_and_reads_but_a_write_is_busy_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "review.sqlite"
    with DecisionStore(path) as store:
        store.record(Decision("a", "accept", "fear"), reviewer="ann")
    with store_locked(path), DecisionStore(path, busy_timeout_s=0.2) as store:
        assert store.current_decisions()["action"].tolist() == ["accept"]  # reads never wait
        with pytest.raises(ReviewStoreBusyError, match="nothing was written"):
            store.record(Decision("a", "keep", "sadness"), reviewer="ann")
        with pytest.raises(ReviewStoreBusyError):
            store.undo_last(reviewer="ann")
        assert count_events(path) == 1
    with DecisionStore(path) as store:  # lock released: writing works again
        store.record(Decision("a", "keep", "sadness"), reviewer="ann")
        assert list(store.history()["action"]) == ["accept", "keep"]
