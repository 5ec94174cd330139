"""The csv layout's crowd votes: `votes_<class>` columns in labels.csv and labels.parquet.

Counts, distributions, rows without votes, bad cells (a `malformed_row` naming the
column) and bad column names (an error naming the column), through `read_dataset`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _dataset_files import write_image, write_rows

from fercleaner.datasets import read_dataset
from fercleaner.errors import DatasetError

HEADER = ["path", "label", "votes_neutral", "votes_happy", "votes_contempt"]
ROWS = [
    ["a.png", "neutral", "3", "1", "0"],  # counts; `happy` is spelled as labels may be
    ["b.png", "happiness", "0.2", "0.7", "0.1"],  # a distribution
    ["c.png", "neutral", "", "", ""],  # no votes
    ["d.png", "happiness", "", "2", ""],  # empty beside filled counts 0
    ["e.png", "neutral", "0", "0", "0"],  # all zero: nobody voted
]


def _folder(tmp_path, rows=ROWS, header=HEADER, fmt="csv"):
    root = tmp_path / "data"
    for i, row in enumerate(rows):
        write_image(root / row[0], seed=i)
    if fmt == "csv":
        write_rows(root / "labels.csv", [header, *rows])
    else:
        frame = pd.DataFrame(rows, columns=header)
        for column in header[2:]:  # parquet holds numbers, empty cells are nulls
            frame[column] = pd.to_numeric(frame[column].replace("", None))
        frame.to_parquet(root / "labels.parquet")
    return root


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_vote_columns_become_votes_over_the_dataset_classes(tmp_path, fmt):
    dataset = read_dataset(_folder(tmp_path, fmt=fmt))
    assert dataset.layout == "csv" and dataset.problems.empty
    # contempt has no given label, but a votes column names it: it is a class
    assert dataset.classes == ["neutral", "happiness", "contempt"]
    votes = dataset.samples.set_index("sample_id")["votes"]
    np.testing.assert_allclose(votes["a.png"], [3, 1, 0])
    np.testing.assert_allclose(votes["b.png"], [0.2, 0.7, 0.1])
    assert votes["c.png"] is None and votes["e.png"] is None
    np.testing.assert_allclose(votes["d.png"], [0, 2, 0])
    assert "votes for 3 samples (2 without)" in dataset.detection


def test_without_vote_columns_the_sample_table_has_no_votes(tmp_path):
    rows = [r[:2] for r in ROWS]
    dataset = read_dataset(_folder(tmp_path, rows=rows, header=HEADER[:2]))
    assert "votes" not in dataset.samples.columns
    assert dataset.classes == ["neutral", "happiness"]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("-1", "votes_happy '-1' is not a non-negative finite number"),
        ("many", "votes_happy 'many' is not a number"),
        ("inf", "votes_happy 'inf' is not a non-negative finite number"),
    ],
)
def test_a_bad_vote_cell_is_a_malformed_row_naming_the_column(tmp_path, cell, reason):
    rows = [*ROWS[:2], ["x.png", "neutral", "1", cell, "0"]]
    dataset = read_dataset(_folder(tmp_path, rows=rows))
    assert dataset.rows_listed == 3 and len(dataset.samples) == 2
    problem = dataset.problems.iloc[0]
    assert problem["kind"] == "malformed_row" and problem["row"] == 4
    assert reason in problem["reason"]


def test_vote_column_names_are_checked(tmp_path):
    header = [*HEADER[:4], "votes_hapy"]
    with pytest.raises(DatasetError, match="column 'votes_hapy' names no class.*'happiness'"):
        read_dataset(_folder(tmp_path, header=header))
    header = [*HEADER[:4], "votes_happiness"]
    with pytest.raises(DatasetError, match="'votes_happy' and 'votes_happiness' both count"):
        read_dataset(_folder(tmp_path, header=header))


def test_ferplus_non_emotion_counts_are_ignored(tmp_path):
    header = [*HEADER, "votes_unknown", "votes_NF"]
    rows = [[*r, "1", "0"] for r in ROWS]
    dataset = read_dataset(_folder(tmp_path, rows=rows, header=header))
    assert dataset.classes == ["neutral", "happiness", "contempt"]
    np.testing.assert_allclose(dataset.samples["votes"].iloc[0], [3, 1, 0])
