"""Opening a run for review (validation, image allow-list) and the queue queries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from run_fixtures import make_run

from fercleaner.errors import ScoresFormatError
from fercleaner.review.queue import QueueFilter, find_pairs, find_queue, join_decisions
from fercleaner.review.run import ImageNotInRunError, RunError, open_run
from fercleaner.review.store import Decision
from fercleaner.runs import read_run


@pytest.fixture
def run(tmp_path: Path):
    return open_run(make_run(tmp_path))


def _ids(run, positions) -> list[str]:
    return run.scores["sample_id"].iloc[positions].tolist()


def test_scores_are_sorted_most_suspect_first(run) -> None:
    quality = run.scores["label_quality"].to_numpy()
    assert (np.diff(quality) >= 0).all()
    assert run.classes[0] == "neutral"
    assert run.method_columns == ["mtac_confidence", "dynamics_label_quality_signal"]


def test_default_queue_is_every_flagged_sample_in_quality_order(run) -> None:
    ids = _ids(run, find_queue(run.scores, set(), QueueFilter()))
    assert sorted(ids) == [f"img/face_{i:05d}.png" for i in range(6)]
    assert ids[0] == "img/face_00003.png"  # lowest label_quality of the planted rows


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (QueueFilter(issue_types=["ambiguous"]), {4}),
        (QueueFilter(issue_types=["outlier", "ambiguous"]), {4, 5}),
        (QueueFilter(given=["happiness"]), {0, 1, 2}),
        (QueueFilter(proposed=["fear"]), {3}),
        (QueueFilter(pairs=[("happiness", "surprise"), ("anger", "disgust")]), {0, 1, 2, 4}),
        (QueueFilter(splits=["train"]), {0, 3}),
        (QueueFilter(reviewed=True), {1, 5}),
        (QueueFilter(reviewed=False), {0, 2, 3, 4}),
        (QueueFilter(given=["happiness"], splits=["val"], reviewed=True), {1}),
    ],
)
def test_each_filter(run, flt, expected) -> None:
    decided = {"img/face_00001.png", "img/face_00005.png", "img/face_00020.png"}
    ids = _ids(run, find_queue(run.scores, decided, flt))
    assert set(ids) == {f"img/face_{i:05d}.png" for i in expected}


def test_issue_type_none_reaches_clean_samples(run) -> None:
    positions = find_queue(run.scores, set(), QueueFilter(issue_types=None))
    assert len(positions) == len(run.scores)
    assert list(positions) == sorted(positions)


def test_pairs_and_join(run) -> None:
    pairs = find_pairs(run.scores)
    assert pairs.iloc[0].tolist() == ["happiness", "surprise", 3]
    assert len(pairs) == 3  # the outlier proposes its own label: no pair
    store = run.open_store()
    store.record(Decision("img/face_00000.png", "accept", "surprise"), reviewer="ann")
    joined = join_decisions(run.scores, store.current_decisions()).set_index("sample_id")
    assert joined.loc["img/face_00000.png", "decision_action"] == "accept"
    assert joined["decision_action"].notna().sum() == 1


def test_images_are_served_only_for_the_runs_samples(run, tmp_path: Path) -> None:
    assert run.image_path("img/face_00000.png").is_file()
    for outsider in (
        "img/face_99999.png",
        "../../etc/passwd",
        str(tmp_path / "faces/img/face_00000.png"),
    ):
        with pytest.raises(ImageNotInRunError, match="not in run"):
            run.image_path(outsider)


def test_missing_run_and_missing_scores(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        open_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="fercleaner score"):
        open_run(tmp_path / "empty")


def test_a_foreign_scores_file_names_the_missing_columns(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    table = pa.table({"sample_id": ["a"], "split": ["train"], "given_label": ["fear"]})
    meta = {"classes": ["fear"], "method": "x", "recipe": {}}
    pq.write_table(
        table.replace_schema_metadata({b"fercleaner": json.dumps(meta).encode()}),
        run_dir / "scores.parquet",
    )
    for reader in (open_run, read_run):
        with pytest.raises(ScoresFormatError, match="label_quality") as info:
            reader(run_dir)
        assert "proposed_label" in str(info.value)
        assert "sample_id," not in str(info.value)  # present columns are not listed


def test_scores_without_metadata_are_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pq.write_table(pa.table({"x": [1]}), run_dir / "scores.parquet")
    with pytest.raises(ScoresFormatError):
        open_run(run_dir)
    with pytest.raises(ScoresFormatError):
        read_run(run_dir)
