"""The Streamlit review app driven through its widget keys with `AppTest`.

Every action and every filter is exercised, and each assertion reads the decision back
from the store on disk, not from session state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from app_harness import APP, current, decisions, open_run_for_app, sid, start
from streamlit.testing.v1 import AppTest

from fercleaner.app import keys
from fercleaner.app.markup import escape_markdown
from fercleaner.review.store import Decision, DecisionStore


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return open_run_for_app(tmp_path, monkeypatch)


def test_queue_starts_at_the_most_suspect_sample(run_dir: Path) -> None:
    at = start()
    assert current(at) == sid(3)  # lowest label_quality of the planted suspects
    assert "sadness" in at.markdown[0].value and "fear" in at.markdown[0].value
    assert at.query_params[keys.QUERY_SAMPLE] == sid(3)
    assert len(at.get("image")) == 1


@pytest.mark.parametrize(
    ("button", "action", "label"),
    [
        (keys.BTN_ACCEPT, "accept", "fear"),
        (keys.BTN_KEEP, "keep", "sadness"),
        (keys.BTN_EXCLUDE, "exclude", None),
        (keys.relabel_key("anger"), "relabel", "anger"),
    ],
)
def test_each_action_is_written_to_the_store(run_dir, button, action, label) -> None:
    at = start()
    at.button(key=button).click().run()
    assert not at.exception
    assert decisions(run_dir) == {sid(3): (action, label, "ann", "", None)}
    assert current(at) == sid(0)  # moved on to the next suspect
    assert "Saved" in at.success[0].value


def test_ambiguous_keeps_the_model_soft_label(run_dir: Path) -> None:
    at = start()
    at.button(key=keys.BTN_AMBIGUOUS).click().run()
    action, label, _, _, soft = decisions(run_dir)[sid(3)]
    assert action == "ambiguous"
    assert len(soft) == 7 and sum(soft) == pytest.approx(1.0, abs=1e-5)
    assert label == "sadness"  # the soft label's argmax (it leans to the given label)


def test_note_is_saved_with_the_decision_and_cleared(run_dir: Path) -> None:
    at = start()
    at.text_input(key=keys.NOTE).input("eyebrows say fear").run()
    at.button(key=keys.BTN_ACCEPT).click().run()
    assert decisions(run_dir)[sid(3)][3] == "eyebrows say fear"
    assert at.text_input(key=keys.NOTE).value == ""


def test_undo_restores_and_returns_to_the_sample_even_after_a_reload(run_dir: Path) -> None:
    at = start()
    at.button(key=keys.BTN_ACCEPT).click().run()
    at.button(key=keys.BTN_KEEP).click().run()
    assert set(decisions(run_dir)) == {sid(3), sid(0)}
    at.button(key=keys.BTN_UNDO).click().run()
    assert set(decisions(run_dir)) == {sid(3)}
    assert current(at) == sid(0)
    fresh = start()  # a reloaded tab has no session memory, the store does
    fresh.button(key=keys.BTN_UNDO).click().run()
    assert decisions(run_dir) == {}
    assert current(fresh) == sid(3)


def test_skip_and_previous_navigate_without_deciding(run_dir: Path) -> None:
    at = start()
    at.button(key=keys.BTN_NEXT).click().run()
    assert current(at) == sid(0)
    at.button(key=keys.BTN_NEXT).click().run()
    assert current(at) == sid(1)
    at.button(key=keys.BTN_PREV).click().run()
    assert current(at) == sid(0)
    assert decisions(run_dir) == {}


def test_without_a_reviewer_name_nothing_is_recorded(run_dir, monkeypatch) -> None:
    monkeypatch.delenv(keys.ENV_REVIEWER)
    at = start()
    at.button(key=keys.BTN_ACCEPT).click().run()
    assert decisions(run_dir) == {}
    assert "name" in at.error[0].value
    at.sidebar.text_input(key=keys.REVIEWER).input("zoe").run()
    at.button(key=keys.BTN_ACCEPT).click().run()
    assert decisions(run_dir)[sid(3)][2] == "zoe"


def test_overriding_another_reviewers_decision_is_announced(run_dir: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(4), "keep", "anger"), reviewer="bob")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[keys.QUERY_SAMPLE] = sid(4)  # e.g. a second tab still showing it
    at.run()
    assert any("Current decision: keep → anger by bob" in i.value for i in at.info)
    at.button(key=keys.BTN_EXCLUDE).click().run()
    assert "replaces bob's decision (keep → anger)" in at.warning[0].value
    with DecisionStore(run_dir / "review.sqlite") as store:
        assert list(store.history(sid(4))["reviewer"]) == ["bob", "ann"]
        assert store.current_decisions_of([sid(4)])["action"].tolist() == ["exclude"]


@pytest.mark.parametrize(
    ("button", "action", "label"),
    [(keys.BTN_EXCLUDE, "exclude", None), (keys.relabel_key("anger"), "relabel", "anger")],
)
def test_a_click_for_a_sample_no_longer_on_screen_records_nothing(
    run_dir, button, action, label
) -> None:
    at = start()
    assert current(at) == sid(3)
    # a doubled shortcut: the first press moved on to sid(0) before sid(0) was drawn, so
    # the second press still carries sid(3), the sample on screen when it was pressed
    at.session_state[keys.CURRENT] = sid(0)
    at.button(key=button).click().run()
    assert not at.exception
    assert decisions(run_dir) == {}
    assert f"Not recorded: this {action} click was for {escape_markdown(sid(3))}" in (
        at.warning[0].value
    )
    assert current(at) == sid(0)  # now drawn: a click on it is a decision on it
    at.button(key=button).click().run()
    assert decisions(run_dir) == {sid(0): (action, label, "ann", "", None)}
    assert "Saved" in at.success[0].value
