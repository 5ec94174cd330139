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


def write_manifests(
    manifest: pd.DataFrame, out: Path, *, classes: Sequence[str], metadata: dict[str, Any]
) -> dict[str, Path]:
    """Write `<out>/<split>.parquet` for every split present (train, val, test, then others).

    Returns:
        split name -> manifest path.
    """
    manifests = {}
    splits = [s for s in SPLIT_ORDER if (manifest["split"] == s).any()]
    splits += sorted(set(manifest["split"]) - set(SPLIT_ORDER))
    for split in splits:
        part = manifest[manifest["split"] == split].reset_index(drop=True)
        path = out / f"{split}.parquet"
        write_manifest(part, path, classes=classes, metadata={**metadata, "split": split})
        manifests[split] = path
    return manifests


def write_manifest(
    frame: pd.DataFrame, path: Path, *, classes: Sequence[str], metadata: dict[str, Any]
) -> None:
    """Write one manifest atomically with `fercleaner` and `huggingface` schema metadata."""
    schema = pa.schema(
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
    columns = {
        name: pa.array(
            [list(map(float, v)) for v in frame[name]]
            if name == "soft_label"
            else frame[name].tolist()
            if name in ("reviewer",)
            else frame[name],
            type=schema.field(name).type,
            from_pandas=True,
        )
        for name in MANIFEST_COLUMNS
    }
    table = pa.table(columns, schema=schema)
    table = table.replace_schema_metadata(
        {
            b"fercleaner": json.dumps(metadata).encode(),
            b"huggingface": json.dumps({"info": {"features": hf_features(classes)}}).encode(),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


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
