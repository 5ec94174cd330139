"""The cleaned manifests: one Parquet file per split, for pandas, pyarrow and HF `datasets`.

`label` is the class index into the metadata's `classes` (a ClassLabel for `datasets`,
whose features ride in the `huggingface` schema metadata; it only honours them on integer
storage) and `label_name` is the same label spelled out, like `given_label`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner.atomic import atomic_path
from fercleaner.export.resolve import SPLIT_ORDER

#: Manifest columns, in order.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "path",
    "split",
    "given_label",
    "label",
    "label_name",
    "soft_label",
    "weight",
    "action",
    "decided_by",
    "reviewer",
    "decided_at",
    "label_quality",
    "run_id",
)


#: Rows per Parquet row group: readers that stream (`pyarrow.dataset`, HF `datasets`)
#: hold one group at a time, and the writer converts one group at a time.
ROW_GROUP_ROWS = 65_536

_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("path", pa.string()),
        ("split", pa.string()),
        ("given_label", pa.string()),
        ("label", pa.int64()),
        ("label_name", pa.string()),
        ("soft_label", pa.list_(pa.float32())),
        ("weight", pa.float32()),
        ("action", pa.string()),
        ("decided_by", pa.string()),
        ("reviewer", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
        ("label_quality", pa.float64()),
        ("run_id", pa.string()),
    ]
)


def write_manifests(
    manifest: pd.DataFrame,
    out: Path,
    *,
    classes: Sequence[str],
    metadata: dict[str, Any],
    row_group_rows: int = ROW_GROUP_ROWS,
) -> dict[str, Path]:
    """Write `<out>/<split>.parquet` for every split present (train, val, test, then others).

    Each file is written in row groups of `row_group_rows` (see `write_manifest`).

    Returns:
        split name -> manifest path.
    """
    manifests = {}
    splits = [s for s in SPLIT_ORDER if (manifest["split"] == s).any()]
    splits += sorted(set(manifest["split"]) - set(SPLIT_ORDER))
    for split in splits:
        part = manifest[manifest["split"] == split].reset_index(drop=True)
        path = out / f"{split}.parquet"
        write_manifest(
            part,
            path,
            classes=classes,
            metadata={**metadata, "split": split},
            row_group_rows=row_group_rows,
        )
        manifests[split] = path
    return manifests


def write_manifest(
    frame: pd.DataFrame,
    path: Path,
    *,
    classes: Sequence[str],
    metadata: dict[str, Any],
    row_group_rows: int = ROW_GROUP_ROWS,
) -> None:
    """Write one manifest atomically with `fercleaner` and `huggingface` schema metadata.

    The rows are converted and written `row_group_rows` at a time, one Parquet row group
    each, so the writer's extra memory is one group's, not the whole manifest's.
    """
    if row_group_rows < 1:
        raise ValueError(f"row_group_rows must be >= 1; got {row_group_rows}")
    schema = _SCHEMA.with_metadata(
        {
            b"fercleaner": json.dumps(metadata).encode(),
            b"huggingface": json.dumps({"info": {"features": hf_features(classes)}}).encode(),
        }
    )
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, max(len(frame), 1), row_group_rows):
            part = frame.iloc[start : start + row_group_rows]
            writer.write_table(_to_table(part, schema), row_group_size=row_group_rows)


def _to_table(part: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """One row group of the manifest as an Arrow table of `schema`."""
    columns = {}
    for name in MANIFEST_COLUMNS:
        kind = schema.field(name).type
        if name == "soft_label":
            columns[name] = _list_column(part[name], kind)
        elif name == "reviewer":
            columns[name] = pa.array(part[name].tolist(), type=kind, from_pandas=True)
        else:
            columns[name] = pa.array(part[name], type=kind, from_pandas=True)
    return pa.table(columns, schema=schema)


def _list_column(values: pd.Series, kind: pa.DataType) -> pa.Array:
    """A list<float32> column from per-row vectors, without a Python float per value."""
    rows = values.tolist()
    if not rows:
        return pa.array([], type=kind)
    lengths = np.fromiter((len(v) for v in rows), dtype=np.int32, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int32)]).astype(np.int32)
    flat = np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in rows])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float32()))


def hf_features(classes: Sequence[str]) -> dict[str, Any]:
    """Hugging Face `datasets` features for the manifest (labels as ClassLabel)."""

    def value(dtype: str) -> dict[str, str]:
        return {"dtype": dtype, "_type": "Value"}

    class_label = {"names": list(classes), "_type": "ClassLabel"}
    return {
        "sample_id": value("string"),
        "path": value("string"),
        "split": value("string"),
        "given_label": value("string"),
        "label": class_label,
        "label_name": value("string"),
        "soft_label": {"feature": value("float32"), "_type": "List"},
        "weight": value("float32"),
        "action": value("string"),
        "decided_by": value("string"),
        "reviewer": value("string"),
        "decided_at": value("timestamp[us, tz=UTC]"),
        "label_quality": value("float64"),
        "run_id": value("string"),
    }
