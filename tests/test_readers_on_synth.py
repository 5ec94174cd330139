"""Every reader on the same synthetic content written in its layout: same samples, same labels."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fercleaner.datasets import list_layouts, read_dataset, summarize_dataset
from fercleaner.synth import write_synthetic_dataset


@pytest.mark.parametrize("layout", list_layouts())
def test_reader_recovers_the_synthetic_truth(tmp_path, layout):
    out = write_synthetic_dataset(tmp_path / layout, n=40, layout=layout, seed=7, noise_rate=0.25)
    truth = pd.read_parquet(f"{out}.truth.parquet")
    dataset = read_dataset(out)

    assert dataset.layout == layout  # auto-detected
    assert dataset.problems.empty, dataset.problems.to_dict("records")
    assert dataset.reconciles and dataset.rows_listed == len(truth)
    got = dataset.samples.set_index("sample_id").sort_index()
    want = truth.set_index("sample_id").sort_index()
    assert list(got.index) == list(want.index)
    assert got["given_label"].tolist() == want["given_label"].tolist()
    assert got["split"].tolist() == want["split"].tolist()
    assert set(want["given_label"]) <= set(dataset.classes)
    assert want["is_noisy"].any()  # the planted noise is in the labels the reader returns

    summary = json.loads(json.dumps(summarize_dataset(dataset)))  # plain JSON values only
    for split, group in want.groupby("split"):
        counts = group["given_label"].value_counts().to_dict()
        assert summary["splits"][split]["total"] == len(group)
        assert {k: v for k, v in summary["splits"][split]["classes"].items() if v} == counts
    assert summary["votes_present"] == (layout in ("ferplus", "fer2013"))
