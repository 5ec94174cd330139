"""Export at scale: manifests in row groups that streaming readers take one at a time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pq
import pytest
from run_fixtures import CLASSES, make_run

from fercleaner.export import build_manifest, export_run, read_decisions, write_manifests
from fercleaner.review.store import Decision, DecisionStore
from fercleaner.runs import read_run


def _manifest(run_dir: Path) -> pd.DataFrame:
    run = read_run(run_dir)
    frame = build_manifest(run, read_decisions(run, None), policy="soft", min_confidence=0.0)
    return frame


def test_manifests_are_written_in_row_groups_that_stream(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    with DecisionStore(run_dir / "review.sqlite") as store:  # human rows: reviewer, time set
        store.record(Decision("img/face_00003.png", "relabel", "anger"), reviewer="ann")
    frame = _manifest(run_dir)
    whole = write_manifests(frame, tmp_path / "whole", classes=CLASSES, metadata={"x": 1})
    grouped = write_manifests(
        frame, tmp_path / "grouped", classes=CLASSES, metadata={"x": 1}, row_group_rows=5
    )
    for split, path in grouped.items():
        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(sizes) == 5 and sum(sizes) == meta.num_rows
        assert meta.num_row_groups == -(-meta.num_rows // 5)
        batches = list(pa_dataset.dataset(path).to_batches(batch_size=5))
        assert len(batches) == meta.num_row_groups
        # same rows, values and schema metadata as one group
        pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(whole[split]))
        stored = pq.read_schema(path).metadata
        assert json.loads(stored[b"fercleaner"]) == {"x": 1, "split": split}
        assert b"huggingface" in stored


def test_soft_labels_survive_the_list_column(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=12)
    frame = _manifest(run_dir)
    paths = write_manifests(frame, tmp_path / "out", classes=CLASSES, metadata={}, row_group_rows=4)
    back = pd.concat([pd.read_parquet(p) for p in paths.values()]).set_index("sample_id")
    for sample_id, soft in zip(frame["sample_id"], frame["soft_label"], strict=True):
        stored = back.loc[sample_id, "soft_label"]
        assert stored.dtype == np.float32
        np.testing.assert_array_equal(stored, np.asarray(soft, dtype=np.float32))


def test_a_bad_row_group_size_is_refused(tmp_path: Path) -> None:
    frame = _manifest(make_run(tmp_path, n=6))
    with pytest.raises(ValueError, match="row_group_rows"):
        write_manifests(frame, tmp_path / "o", classes=CLASSES, metadata={}, row_group_rows=0)


def test_hugging_face_datasets_streams_the_grouped_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    result = export_run(make_run(tmp_path, n=30), tmp_path / "out")
    frame = pd.read_parquet(result.manifests["train"])
    path = tmp_path / "small" / "train.parquet"
    path.parent.mkdir()
    from fercleaner.export import write_manifest

    meta = json.loads(pq.read_schema(result.manifests["train"]).metadata[b"fercleaner"])
    write_manifest(frame, path, classes=CLASSES, metadata=meta, row_group_rows=3)
    streamed = datasets.load_dataset("parquet", data_files=str(path), split="train", streaming=True)
    rows = list(streamed)
    assert [r["sample_id"] for r in rows] == frame["sample_id"].tolist()
    assert datasets.Dataset.from_parquet(str(path)).features["label"].names == CLASSES
