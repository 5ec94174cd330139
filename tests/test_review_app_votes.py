"""The review app shows a sample's crowd votes beside the model's soft label, as text.

The run is `run_fixtures.make_run`'s, with crowd votes joined by `apply_crowd_votes` (as
`fercleaner score` does for a dataset with votes): rows 3 and 4 have votes, row 5 none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_harness import APP, current, decisions, sid
from run_fixtures import CLASSES, make_scores_frame, write_faces, write_scores_file
from streamlit.testing.v1 import AppTest

from fercleaner.app import keys
from fercleaner.scoring.crowd import apply_crowd_votes


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "faces"
    frame = make_scores_frame(36, image_paths=write_faces(root, 36))
    votes = np.zeros((36, len(CLASSES)))
    votes[3, CLASSES.index("fear")], votes[3, CLASSES.index("sadness")] = 7, 3
    votes[4, CLASSES.index("anger")] = 1
    frame = apply_crowd_votes(frame, votes, CLASSES).scores
    run = tmp_path / "run"
    write_scores_file(run / "scores.parquet", frame, dataset_root=root)
    monkeypatch.setenv(keys.ENV_RUN_DIR, str(run))
    monkeypatch.setenv(keys.ENV_REVIEWER, "ann")
    return run


def _open(sample_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[keys.QUERY_SAMPLE] = sample_id
    at.run()
    assert not at.exception, at.exception
    assert current(at) == sample_id
    return at


def _votes_table(at: AppTest):
    tables = [d.value for d in at.dataframe if "votes" in d.value.columns]
    return tables[0] if tables else None


def test_votes_are_shown_beside_the_soft_label(run_dir: Path) -> None:
    at = _open(sid(3))
    table = _votes_table(at)
    assert table is not None
    assert table["class"].tolist() == CLASSES
    shown = dict(zip(table["class"], table["votes"], strict=True))
    assert (shown["fear"], shown["sadness"], shown["happiness"]) == ("7", "3", "0")
    assert list(table.columns) == ["class", "votes", "soft label", "model probability"]
    assert table["soft label"].sum() == pytest.approx(1.0, abs=0.01)
    assert any("Crowd: 10 vote(s); consensus fear" in c.value for c in at.caption)
    # one vote reads as one
    one = _votes_table(_open(sid(4)))
    assert dict(zip(one["class"], one["votes"], strict=True))["anger"] == "1"


def test_no_votes_no_votes_table_and_decisions_still_work(run_dir: Path) -> None:
    at = _open(sid(5))
    assert _votes_table(at) is None
    assert not any("Crowd:" in c.value for c in at.caption)
    at.button(key=keys.BTN_AMBIGUOUS).click().run()
    assert not at.exception
    assert decisions(run_dir)[sid(5)][0] == "ambiguous"
