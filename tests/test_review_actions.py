"""One meaning per review action: the app records what the table says, export applies what it says.

The review app turns a click into a decision with `make_decision`; export turns the
current decision into a manifest row with `get_outcomes` / `get_weights`. Clicking every
action in the app and exporting checks both sides against the one table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_harness import current, decisions, open_run_for_app, start
from run_fixtures import CLASSES

from fercleaner.app import keys
from fercleaner.export import export_run
from fercleaner.review import (
    ACTION_TABLE,
    DECISION_ACTIONS,
    OUTCOMES,
    get_action,
    get_outcomes,
    get_weights,
    make_decision,
    open_run,
)


def test_the_table_names_exactly_the_stores_actions() -> None:
    assert list(ACTION_TABLE) == list(DECISION_ACTIONS)
    assert set(OUTCOMES) <= set(ACTION_TABLE)  # a manifest action is an action's name
    assert [a for a, m in ACTION_TABLE.items() if m.weight == 0] == ["exclude"]
    assert [a for a, m in ACTION_TABLE.items() if m.soft] == ["ambiguous"]
    with pytest.raises(ValueError, match="unknown review action 'undo'; expected one of accept"):
        get_action("undo")


def test_make_decision_takes_each_label_from_where_the_table_says() -> None:
    row = pd.Series(
        {
            "sample_id": "a.png",
            "given_label": "sadness",
            "proposed_label": "fear",
            "soft_label": np.array([0.1, 0.2, 0.6, 0.1], dtype=np.float32),
        }
    )
    classes = ["neutral", "sadness", "fear", "anger"]
    made = {a: make_decision(a, row, classes, label="anger", note="n") for a in ACTION_TABLE}
    assert {a: d.label for a, d in made.items()} == {
        "accept": "fear",
        "keep": "sadness",
        "relabel": "anger",  # the class the reviewer chose
        "ambiguous": "fear",  # the soft label's top class
        "exclude": None,
    }
    assert made["ambiguous"].soft_label == pytest.approx([0.1, 0.2, 0.6, 0.1])
    assert all(d.soft_label is None for a, d in made.items() if a != "ambiguous")
    assert {d.sample_id for d in made.values()} == {"a.png"} and made["keep"].note == "n"


def test_outcomes_and_weights() -> None:
    actions = ["accept", "accept", "keep", "relabel", "relabel", "ambiguous", "exclude"]
    labels = ["fear", "sadness", "sadness", "fear", "sadness", "fear", None]
    given = ["sadness"] * 7
    outcomes = get_outcomes(actions, labels, given)
    assert outcomes.tolist() == [
        "relabel",
        "keep",  # accepting a proposal equal to the given label changes nothing
        "keep",
        "relabel",
        "keep",
        "ambiguous",
        "exclude",
    ]
    assert get_weights(outcomes).tolist() == [1, 1, 1, 1, 1, 1, 0]


def test_every_app_action_is_recorded_and_exported_as_the_table_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = open_run_for_app(tmp_path, monkeypatch)
    run = open_run(run_dir)
    at = start()
    clicked: dict[str, tuple[str, str | None]] = {}  # sample -> (action, chosen class)
    for button, action, chosen in (
        (keys.BTN_ACCEPT, "accept", None),
        (keys.BTN_KEEP, "keep", None),
        (keys.BTN_AMBIGUOUS, "ambiguous", None),
        (keys.BTN_EXCLUDE, "exclude", None),
        (keys.relabel_key("disgust"), "relabel", "disgust"),
    ):
        sample = current(at)
        at.button(key=button).click().run()
        assert not at.exception, at.exception
        clicked[sample] = (action, chosen)
    assert len(clicked) == 5  # each click moved on to the next sample
    stored = decisions(run_dir)
    for sample, (action, chosen) in clicked.items():
        want = make_decision(action, run.row(sample), run.classes, label=chosen)
        got = stored[sample]
        assert (got[0], got[1]) == (want.action, want.label), sample
        assert got[4] == (None if want.soft_label is None else pytest.approx(want.soft_label))

    result = export_run(run_dir, tmp_path / "out", min_confidence=1.0)  # humans only
    manifest = pd.concat(pd.read_parquet(p) for p in result.manifests.values())
    manifest = manifest.set_index("sample_id")
    for sample, (action, chosen) in clicked.items():
        row = manifest.loc[sample]
        decision = make_decision(action, run.row(sample), run.classes, label=chosen)
        label = decision.label or row["given_label"]  # exclude keeps the given label
        outcome = get_outcomes([action], [label], [row["given_label"]])[0]
        assert (row["action"], row["label_name"], row["decided_by"]) == (outcome, label, "human")
        assert row["weight"] == get_weights([outcome])[0]
        assert row["label"] == CLASSES.index(label)
    assert (manifest.loc[[s for s in manifest.index if s not in clicked], "action"] == "keep").all()
