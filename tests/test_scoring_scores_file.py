"""assemble_scores builds the contract frame; write_scores/read_scores round-trip it.

read_scores rejects files that are not a fercleaner scores file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scoring_data import make_data

from fercleaner.errors import ScoresFormatError
from fercleaner.scoring import (
    SCORE_COLUMNS,
    ScoreColumns,
    assemble_columns,
    assemble_scores,
    is_most_suspect_first,
    open_scores,
    read_scores,
    scores_file,
    sort_most_suspect_first,
    write_scores,
)

CLASSES = ["neutral", "happiness", "surprise", "sadness"]
META = {"classes": CLASSES, "method": "baseline", "recipe": {"name": "quick"}, "run_id": "r1"}


def _inputs(n=200, seed=0):
    data = make_data(n=n, num_classes=len(CLASSES), flip_rate=0.2, seed=seed)
    samples = pd.DataFrame(
        {
            "sample_id": [f"train/{i:04d}.png" for i in range(n)],
            "split": "train",
            "given_label": [CLASSES[k] for k in data["given"]],
            "path": [f"/data/train/{i:04d}.png" for i in range(n)],
        }
    )
    probs = data["pred_probs"]
    rows = np.arange(n)
    readouts = {
        "mtac": {
            "pred_probs": probs,
            "soft_label": probs,
            "uncertainty": 1 - probs.max(axis=1),
            "label_quality_signal": probs[rows, data["given"]],
            "confidence": probs.max(axis=1),
            "au": np.tile(np.linspace(0, 1, 3), (n, 1)),
        },
        "dynamics": {"label_quality_signal": probs[rows, data["given"]] ** 2},
    }
    return samples, readouts, data


def test_assemble_scores_builds_the_contract(tmp_path):
    samples, readouts, data = _inputs()
    frame = assemble_scores(samples, CLASSES, readouts, method_name="mtac")
    assert list(frame.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert frame.columns[-1] == "path"
    for column in (
        "mtac_confidence",
        "mtac_au",
        "mtac_label_quality_signal",
        "dynamics_label_quality_signal",
    ):
        assert column in frame.columns
    assert "mtac_pred_probs" not in frame.columns  # only mtac has probabilities: no copy
    both = {
        **readouts,
        "dynamics": {**readouts["dynamics"], "pred_probs": readouts["mtac"]["pred_probs"] ** 2},
    }
    combined = assemble_scores(samples, CLASSES, both, method_name="mtac")
    assert "mtac_pred_probs" in combined.columns and "dynamics_pred_probs" in combined.columns
    assert frame["label_quality"].between(0, 1).all()
    assert set(frame["issue_type"]) <= {"mislabeled", "ambiguous", "outlier", "none"}
    flagged = frame["is_label_issue"].to_numpy()
    assert ((frame["issue_type"] != "none").to_numpy() == flagged).all()
    # planted flips are found through the whole assembly
    noisy = data["is_noisy"]
    assert (flagged & noisy).sum() / flagged.sum() > 0.8
    assert (flagged & noisy).sum() / noisy.sum() > 0.8
    unflagged = ~flagged
    assert (frame["proposed_label"][unflagged] == frame["given_label"][unflagged]).all()
    # most flagged true errors get their true label proposed
    true_names = np.array(CLASSES, dtype=object)[data["true"]]
    right = (frame["proposed_label"].to_numpy() == true_names)[flagged & noisy]
    assert right.mean() > 0.8


def test_scores_round_trip_with_metadata(tmp_path):
    samples, readouts, _ = _inputs(n=60)
    frame = assemble_scores(samples, CLASSES, readouts, method_name="mtac")
    path = write_scores(frame, tmp_path / "run" / "scores.parquet", metadata=META)
    scores = read_scores(path)
    assert scores.classes == CLASSES
    assert scores.metadata == META
    assert list(scores.frame.columns) == list(frame.columns)
    np.testing.assert_allclose(
        scores.matrix("pred_probs"), np.stack(frame["pred_probs"]), rtol=1e-6
    )
    assert scores.matrix("mtac_au").shape == (60, 3)
    pd.testing.assert_series_equal(scores.frame["is_label_issue"], frame["is_label_issue"])
    assert list(scores.frame["proposed_label"]) == list(frame["proposed_label"])
    schema = pq.read_schema(path)
    assert schema.field("pred_probs").type == pa.list_(pa.float32())
    assert not list(tmp_path.glob("run/.*tmp"))  # atomic write left no temp file


def test_write_requires_metadata_keys(tmp_path):
    samples, readouts, _ = _inputs(n=20)
    frame = assemble_scores(samples, CLASSES, readouts, method_name="mtac")
    with pytest.raises(ScoresFormatError, match=r"lacks \['recipe'\]"):
        write_scores(frame, tmp_path / "s.parquet", metadata={"classes": CLASSES, "method": "m"})


def test_foreign_file_error_names_missing_columns(tmp_path):
    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"sample_id": ["a"], "label": ["happy"]}), path)
    with pytest.raises(ScoresFormatError) as info:
        read_scores(path)
    message = str(info.value)
    assert (
        "label_quality" in message
        and "is_label_issue" in message
        and "'fercleaner' metadata" in message
    )
    assert "'sample_id'" not in message


def test_malformed_files_name_row_and_value(tmp_path):
    samples, readouts, _ = _inputs(n=20)
    frame = assemble_scores(samples, CLASSES, readouts, method_name="mtac")
    bad = frame.copy()
    bad.loc[3, "proposed_label"] = "joy"
    write_scores(bad, tmp_path / "a.parquet", metadata=META)
    with pytest.raises(ScoresFormatError, match="row 3 column 'proposed_label' holds 'joy'"):
        read_scores(tmp_path / "a.parquet")
    write_scores(frame, tmp_path / "b.parquet", metadata={**META, "classes": CLASSES[:3]})
    with pytest.raises(ScoresFormatError, match="not one of the classes|has 4 values"):
        read_scores(tmp_path / "b.parquet")
    (tmp_path / "c.parquet").write_text("not parquet")
    with pytest.raises(ScoresFormatError, match="not a readable Parquet file"):
        read_scores(tmp_path / "c.parquet")
    with pytest.raises(ScoresFormatError, match="no scores file"):
        read_scores(tmp_path / "missing.parquet")


def test_list_columns_are_checked_per_row_and_by_type(tmp_path):
    samples, readouts, _ = _inputs(n=20)
    frame = assemble_scores(samples, CLASSES, readouts, method_name="mtac")
    short = frame.copy()
    short.at[5, "soft_label"] = np.asarray(short.at[5, "soft_label"])[:3]
    write_scores(short, tmp_path / "short.parquet", metadata=META)
    expected = (
        f"row 5 column 'soft_label' has 3 values; expected one per class \\({len(CLASSES)}\\)"
    )
    with pytest.raises(ScoresFormatError, match=expected):
        read_scores(tmp_path / "short.parquet")
    table = pq.read_table(tmp_path / "short.parquet")
    flat = table.set_column(
        table.column_names.index("pred_probs"), "pred_probs", pa.array(np.zeros(20))
    )
    pq.write_table(flat, tmp_path / "flat.parquet")
    with pytest.raises(ScoresFormatError, match="column 'pred_probs' holds double, not one list"):
        read_scores(tmp_path / "flat.parquet")


@pytest.mark.parametrize(
    ("column", "row", "values", "what"),
    [
        ("soft_label", 7, "nan", "probabilities: finite, not negative, summing to more than 0"),
        ("pred_probs", 3, "negative", "probabilities"),
        ("soft_label", 0, "zeros", "summing to more than 0"),
    ],
)
def test_distributions_hold_finite_non_negative_values(tmp_path, column, row, values, what):
    samples, readouts, _ = _inputs(n=20)
    frame = assemble_scores(samples, CLASSES, readouts, method_name="mtac")
    vector = np.asarray(frame.at[row, column], dtype=np.float32).copy()
    if values == "nan":
        vector[1] = np.nan
    elif values == "negative":
        vector[0] = -0.25
    else:
        vector[:] = 0.0
    frame.at[row, column] = vector
    write_scores(frame, tmp_path / "bad.parquet", metadata=META)
    with pytest.raises(ScoresFormatError, match=rf"row {row} column '{column}' holds .*{what}"):
        read_scores(tmp_path / "bad.parquet")
    # a stream names the same row, counted from the file's start, whatever the batch
    with pytest.raises(ScoresFormatError, match=rf"row {row} column '{column}'"):
        for _ in open_scores(tmp_path / "bad.parquet").batches(rows=4):
            pass


def test_vote_counts_are_finite_and_not_negative_where_an_image_has_votes(tmp_path):
    samples, readouts, _ = _inputs(n=20)
    frame = assemble_scores(samples, CLASSES, readouts, method_name="mtac")
    votes = [None] * 20
    votes[4] = np.arange(len(CLASSES), dtype=np.float32)
    votes[9] = np.full(len(CLASSES), np.nan, dtype=np.float32)
    crowd = frame.assign(
        votes=votes,
        vote_count=[0.0] * 20,
        consensus_label=frame["given_label"],
        consensus_quality=0.5,
    )
    write_scores(crowd, tmp_path / "votes.parquet", metadata=META)
    with pytest.raises(ScoresFormatError, match=r"row 9 column 'votes' holds \[nan, .*vote counts"):
        read_scores(tmp_path / "votes.parquet")
    crowd.at[9, "votes"] = None  # no votes: fine; so are counts of 0
    write_scores(crowd, tmp_path / "votes.parquet", metadata=META)
    assert read_scores(tmp_path / "votes.parquet").frame["votes"].isna().sum() == 19


def test_assemble_rejects_mismatched_inputs():
    samples, readouts, _ = _inputs(n=20)
    with pytest.raises(ValueError, match="no readout for method 'poi'"):
        assemble_scores(samples, CLASSES, readouts, method_name="poi")
    with pytest.raises(ValueError, match="'joy'"):
        bad = samples.copy()
        bad.loc[0, "given_label"] = "joy"
        assemble_scores(bad, CLASSES, readouts, method_name="mtac")
    with pytest.raises(ValueError, match="lacks columns \\['path'\\]"):
        assemble_scores(samples.drop(columns="path"), CLASSES, readouts, method_name="mtac")


def test_most_suspect_first_orders_by_quality_then_sample_id():
    frame = pd.DataFrame(
        {
            "sample_id": ["d", "c", "b", "a", "e"],
            "label_quality": [0.9, 0.2, 0.5, 0.2, 0.1],
            "payload": [1, 2, 3, 4, 5],
        },
        index=[10, 11, 12, 13, 14],
    )
    assert not is_most_suspect_first(frame)
    ordered = sort_most_suspect_first(frame)
    # e (0.1); a and c tie at 0.2, by sample_id; b (0.5); d (0.9); rows move whole
    assert ordered["sample_id"].tolist() == ["e", "a", "c", "b", "d"]
    assert ordered["payload"].tolist() == [5, 4, 2, 3, 1]
    assert ordered.index.tolist() == [0, 1, 2, 3, 4]
    assert is_most_suspect_first(ordered)
    assert sort_most_suspect_first(ordered).equals(ordered)
    swapped = ordered.copy()
    swapped["sample_id"] = ["e", "c", "a", "b", "d"]  # the tie out of order
    assert not is_most_suspect_first(swapped)
    assert sort_most_suspect_first(swapped)["sample_id"].tolist() == ["e", "a", "c", "b", "d"]
    with_nan = ordered.assign(label_quality=[0.1, 0.2, np.nan, 0.5, 0.9])
    assert not is_most_suspect_first(with_nan)
    assert is_most_suspect_first(ordered.iloc[:1]) and is_most_suspect_first(ordered.iloc[:0])


def test_columns_write_a_row_group_at_a_time_the_file_the_sorted_frame_gives(tmp_path, monkeypatch):
    samples, readouts, _ = _inputs(n=50)
    columns = assemble_columns(samples, CLASSES, readouts, method_name="mtac")
    frame = columns.frame()
    order = columns.most_suspect_first()
    np.testing.assert_array_equal(
        frame["sample_id"].to_numpy()[order], sort_most_suspect_first(frame)["sample_id"]
    )
    pd.testing.assert_frame_equal(
        columns.frame(order[:7]), sort_most_suspect_first(frame).iloc[:7].reset_index(drop=True)
    )
    monkeypatch.setattr(scores_file, "SCORES_ROW_GROUP_ROWS", 16)
    by_groups = write_scores(columns, tmp_path / "a.parquet", metadata=META, order=order)
    whole = write_scores(sort_most_suspect_first(frame), tmp_path / "b.parquet", metadata=META)
    meta = pq.ParquetFile(by_groups).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [16, 16, 16, 2]
    assert pq.read_schema(by_groups).equals(pq.read_schema(whole), check_metadata=True)
    pd.testing.assert_frame_equal(read_scores(by_groups).frame, read_scores(whole).frame)
    assert read_scores(by_groups).metadata == META


def test_columns_of_no_rows_write_an_empty_scores_file(tmp_path):
    samples, readouts, _ = _inputs(n=10)
    columns = assemble_columns(samples, CLASSES, readouts, method_name="mtac")
    empty = write_scores(columns, tmp_path / "s.parquet", metadata=META, order=np.arange(0))
    assert pq.ParquetFile(empty).metadata.num_rows == 0
    assert list(read_scores(empty).frame.columns) == list(columns.frame().columns)


def test_columns_order_rows_as_the_frame_sort_does_at_ties_and_nan():
    frame = pd.DataFrame(
        {
            "sample_id": ["d", "c", "b", "a", "e", "f", "é"],
            "label_quality": [0.9, 0.2, np.nan, 0.2, 0.1, np.nan, 0.2],
        }
    )
    columns = ScoreColumns({name: frame[name].to_numpy() for name in frame.columns})
    ordered = sort_most_suspect_first(frame)["sample_id"].tolist()
    assert frame["sample_id"].to_numpy()[columns.most_suspect_first()].tolist() == ordered
    assert ordered == ["e", "a", "c", "é", "d", "b", "f"]  # NaN last, in their own order
