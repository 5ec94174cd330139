"""The review app's views through `AppTest`: every queue filter, batch mode, overview, links.

Each assertion reads the decisions back from the store on disk, not from session state.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from app_harness import APP, current, decisions, open_run_for_app, sid, start
from streamlit.testing.v1 import AppTest

from fercleaner.app import keys
from fercleaner.review.store import Decision, DecisionStore


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return open_run_for_app(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("key", "value", "expected_first", "expected_len"),
    [
        (keys.F_ISSUE, ["ambiguous"], sid(4), 1),
        (keys.F_ISSUE, ["none"], None, 30),
        (keys.F_GIVEN, ["happiness"], sid(0), 3),
        (keys.F_PROPOSED, ["fear"], sid(3), 1),
        (keys.F_PAIR, ["anger → disgust"], sid(4), 1),
        (keys.F_SPLIT, ["val"], sid(1), 2),
    ],
)
def test_each_filter(run_dir, key, value, expected_first, expected_len) -> None:
    at = start()
    at.button(key=keys.BTN_NEXT).click().run()  # a filter change must restart at the head
    at.sidebar.multiselect(key=key).set_value(value).run()
    assert not at.exception
    queue = list(at.session_state[keys.QUEUE_IDS])
    assert len(queue) == expected_len
    assert current(at) == queue[0]
    if expected_first is not None:
        assert queue[0] == expected_first


def test_reviewed_filter_and_empty_queue(run_dir: Path) -> None:
    at = start()
    for _ in range(6):
        at.button(key=keys.BTN_ACCEPT).click().run()
    assert len(decisions(run_dir)) == 6
    at.run()
    assert current(at) is None
    assert any("Nothing left" in s.value for s in at.success)
    at.sidebar.radio(key=keys.F_REVIEWED).set_value("Reviewed").run()
    assert len(at.session_state[keys.QUEUE_IDS]) == 6
    assert current(at) == sid(3)
    assert any("Current decision: accept → fear by ann" in i.value for i in at.info)


def test_deep_link_to_a_sample_and_refusal_of_unknown_ones(run_dir: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[keys.QUERY_SAMPLE] = sid(4)
    at.run()
    assert current(at) == sid(4)
    bad = AppTest.from_file(APP, default_timeout=60)
    bad.query_params[keys.QUERY_SAMPLE] = "../../etc/passwd"
    bad.run()
    assert "not part of this run" in bad.error[0].value
    assert current(bad) == sid(3)


def test_batch_accepts_all_but_the_opted_out(run_dir: Path) -> None:
    at = start()
    at.sidebar.radio(key=keys.MODE).set_value("Batch").run()
    assert at.selectbox(key=keys.BATCH_PAIR).value == "happiness → surprise"
    at.checkbox(key=keys.batch_skip_key(sid(1))).check().run()
    assert at.button(key=keys.BATCH_ACCEPT).label == "Accept 2 as surprise"
    at.button(key=keys.BATCH_ACCEPT).click().run()
    got = decisions(run_dir)
    assert set(got) == {sid(0), sid(2)}
    assert {v[:2] for v in got.values()} == {("accept", "surprise")}
    assert any("1 left" in s.value for s in at.success)
    at.selectbox(key=keys.BATCH_PAIR).set_value("sadness → fear").run()
    assert [c.key for c in at.checkbox] == [keys.batch_skip_key(sid(3))]


def test_batch_accept_leaves_a_decision_made_after_the_page_was_drawn(run_dir: Path) -> None:
    at = start()
    at.sidebar.radio(key=keys.MODE).set_value("Batch").run()
    assert at.button(key=keys.BATCH_ACCEPT).label == "Accept 3 as surprise"
    with DecisionStore(run_dir / "review.sqlite") as store:  # another reviewer, meanwhile
        store.record(Decision(sid(1), "keep", "happiness"), reviewer="bob")
    at.button(key=keys.BATCH_ACCEPT).click().run()
    assert not at.exception
    got = decisions(run_dir)
    assert got[sid(1)][:3] == ("keep", "happiness", "bob")
    assert {got[s][:3] for s in (sid(0), sid(2))} == {("accept", "surprise", "ann")}
    with DecisionStore(run_dir / "review.sqlite") as store:
        assert list(store.history(sid(1))["reviewer"]) == ["bob"]  # not replaced, not touched
    warning = at.warning[0].value
    assert "Accepted 2 → surprise" in warning
    assert "1 skipped: decided by bob after this page was drawn" in warning


def test_overview_shows_progress_and_reviewer_agreement(run_dir: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(0), "accept", "surprise"), reviewer="ann")
        store.record(Decision(sid(0), "relabel", "surprise"), reviewer="bob")
        store.record(Decision(sid(1), "exclude"), reviewer="bob")
    at = start()
    at.sidebar.radio(key=keys.MODE).set_value("Overview").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "36"
    assert metrics["Flagged"] == "6"
    assert metrics["Flagged reviewed"] == "2"
    agreement = [d.value for d in at.dataframe if "kappa" in d.value.columns]
    assert len(agreement) == 1
    assert agreement[0].iloc[0][["reviewer_a", "reviewer_b", "n_shared", "n_agree"]].tolist() == [
        "ann",
        "bob",
        1,
        1,
    ]


def test_overview_count_tables_are_crosstabs_with_margins(run_dir: Path) -> None:
    import pandas as pd

    from fercleaner.app.data import count_table
    from fercleaner.runs import read_run

    scores = read_run(run_dir).scores
    scores.loc[scores["given_label"] == "fear", "split"] = "train"  # a zero cell
    for rows, columns in (("given_label", "split"), ("given_label", "issue_type")):
        expected = pd.crosstab(scores[rows], scores[columns], margins=True)
        pd.testing.assert_frame_equal(count_table(scores, rows, columns), expected)


def test_a_bad_run_shows_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.ENV_RUN_DIR, str(tmp_path / "missing"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert "does not exist" in at.error[0].value


def test_the_app_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "import fercleaner.app.queue_view, fercleaner.app.batch_view,"
        " fercleaner.app.overview_view\n"
        "import fercleaner.export\n"
        "bad = [m for m in ('torch', 'timm', 'typer', 'rich') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
