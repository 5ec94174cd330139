"""Review at scale: counts computed in SQLite, and an Overview that reads no decision rows.

The store's aggregate reads must agree with the row-level reads they replace (on a log
with several reviewers, overrides and undos), and the Overview must draw without loading
every current decision into a frame (what took seconds with a million decisions).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from app_harness import open_run_for_app, sid, start

from fercleaner.app import keys
from fercleaner.review.store import Decision, DecisionStore, estimate_reviewer_agreement


def _mixed_log(store: DecisionStore) -> None:
    store.record(Decision("a", "accept", "fear"), reviewer="ann")
    store.record(Decision("a", "relabel", "fear"), reviewer="bob")
    store.record(Decision("b", "exclude"), reviewer="ann")
    store.record(Decision("b", "keep", "anger"), reviewer="bob")
    store.record(Decision("c", "keep", "anger"), reviewer="ann")
    store.record(Decision("d", "keep", "sadness"), reviewer="cat")
    store.undo("d", reviewer="cat")  # cat has no decision left
    store.record(Decision("e", "keep", "anger"), reviewer="bob")
    store.record(Decision("e", "exclude"), reviewer="ann")
    store.undo("e", reviewer="ann")  # e: only bob's is live


@pytest.fixture
def store(tmp_path: Path) -> DecisionStore:
    with DecisionStore(tmp_path / "review.sqlite") as s:
        yield s


def test_action_counts_match_the_current_decisions(store: DecisionStore) -> None:
    assert store.count_current_actions() == {}
    _mixed_log(store)
    current = store.current_decisions()
    expected = current["action"].value_counts().sort_index().to_dict()
    assert store.count_current_actions() == expected == {"keep": 3, "relabel": 1}


def test_reviewer_counts_match_the_per_reviewer_decisions(store: DecisionStore) -> None:
    _mixed_log(store)
    rows = store.reviewer_decisions()
    expected = rows.groupby("reviewer").size().rename("decisions").reset_index()
    got = store.count_reviewer_decisions()
    assert got.to_dict("list") == expected.to_dict("list")
    assert got["reviewer"].tolist() == ["ann", "bob"]  # cat's only decision was undone
    assert store.list_reviewers() == ["ann", "bob", "cat"]


def test_single_reviewer_counts_and_no_shared_rows(store: DecisionStore) -> None:
    assert store.count_reviewer_decisions().empty
    store.record_many([Decision(f"s{i}", "keep", "anger") for i in range(5)], reviewer="ann")
    store.undo("s4", reviewer="ann")
    got = store.count_reviewer_decisions()
    assert got.to_dict("list") == {"reviewer": ["ann"], "decisions": [4]}
    shared = store.reviewer_decisions(shared_only=True)
    assert shared.empty and list(shared.columns) == list(store.reviewer_decisions().columns)


def test_shared_only_gives_the_same_agreement(store: DecisionStore) -> None:
    _mixed_log(store)
    shared = store.reviewer_decisions(shared_only=True)
    assert sorted(set(shared["sample_id"])) == ["a", "b", "e"]
    pd.testing.assert_frame_equal(
        estimate_reviewer_agreement(shared),
        estimate_reviewer_agreement(store.reviewer_decisions()),
    )


def test_overview_reads_no_decision_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = open_run_for_app(tmp_path, monkeypatch)
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(0), "accept", "surprise"), reviewer="ann")
        store.record(Decision(sid(0), "relabel", "surprise"), reviewer="bob")
        store.record(Decision(sid(1), "exclude"), reviewer="bob")
        store.record(Decision(sid(20), "keep", "neutral"), reviewer="bob")

    def refuse(*args, **kwargs):
        raise AssertionError("the Overview read every current decision")

    monkeypatch.setattr(DecisionStore, "current_decisions", refuse)
    at = start()
    at.sidebar.radio(key=keys.MODE).set_value("Overview").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Flagged reviewed"] == "2"
    assert metrics["Decisions (all samples)"] == "3"
    by_action = next(d.value for d in at.dataframe if "action" in d.value.columns)
    assert dict(zip(by_action["action"], by_action["count"], strict=True)) == {
        "exclude": 1,
        "keep": 1,
        "relabel": 1,
    }
    per_reviewer = next(d.value for d in at.dataframe if "decisions" in d.value.columns)
    assert per_reviewer.to_dict("list") == {"reviewer": ["ann", "bob"], "decisions": [1, 3]}


def test_decided_changes_since_lists_the_touched_samples(store: DecisionStore) -> None:
    first = store.record(Decision("a", "keep", "anger"), reviewer="ann")
    store.record(Decision("b", "keep", "anger"), reviewer="ann")
    store.undo("a", reviewer="ann")
    newest, changes = store.decided_changes_since(first)
    assert newest == store.last_event_id()
    assert changes == {"b": True, "a": False}
    assert store.decided_changes_since(newest) == (newest, {})


def test_decided_ids_follow_the_store_without_a_full_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fercleaner.app.data import get_decided_ids

    run_dir = open_run_for_app(tmp_path, monkeypatch)
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record_many([Decision(sid(i), "keep", "anger") for i in range(4)], reviewer="ann")
        first = get_decided_ids(str(run_dir), store.last_event_id())
        assert first == {sid(i) for i in range(4)}
        full_reads = []
        real = DecisionStore.decided_ids
        monkeypatch.setattr(
            DecisionStore, "decided_ids", lambda self: full_reads.append(1) or real(self)
        )
        store.record(Decision(sid(9), "exclude"), reviewer="bob")
        store.undo(sid(2), reviewer="ann")
        store.record(Decision(sid(3), "keep", "fear"), reviewer="bob")
        now = get_decided_ids(str(run_dir), store.last_event_id())
        assert now == frozenset(real(store)) == {sid(0), sid(1), sid(3), sid(9)}
        assert isinstance(now, frozenset) and first == {sid(i) for i in range(4)}
        assert full_reads == []


def test_a_session_behind_another_reviewers_click_reuses_the_newer_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fercleaner.app.data import get_decided_ids

    run_dir = open_run_for_app(tmp_path, monkeypatch)
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(0), "keep", "anger"), reviewer="ann")
        stale = store.last_event_id()  # one session reads this version ...
        store.record(Decision(sid(1), "exclude"), reviewer="bob")
        newest = get_decided_ids(str(run_dir), store.last_event_id())  # ... another, newer
        full_reads = []
        real = DecisionStore.decided_ids
        monkeypatch.setattr(
            DecisionStore, "decided_ids", lambda self: full_reads.append(1) or real(self)
        )
        assert get_decided_ids(str(run_dir), stale) == newest == {sid(0), sid(1)}
        assert full_reads == []
