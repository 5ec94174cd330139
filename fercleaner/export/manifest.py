"""The cleaned manifests: one Parquet file per split, for pandas, pyarrow and HF `datasets`.

`label` is the class index into the metadata's `classes` (a ClassLabel for `datasets`,
whose features ride in the `huggingface` schema metadata; it only honours them on integer
storage) and `label_name` is the same label spelled out, like `given_label`.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner.atomic import atomic_path
from fercleaner.export.resolve import SPLIT_ORDER
from fercleaner.row_groups import iter_row_groups

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
    "note",
    "label_quality",
    "run_id",
)


#: Schema metadata keys of every manifest: fercleaner's own (run, policy, split) and the
#: Hugging Face features; both present = a file this module wrote.
MANIFEST_METADATA_KEYS = frozenset({b"fercleaner", b"huggingface"})

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
        ("note", pa.string()),
        ("label_quality", pa.float64()),
        ("run_id", pa.string()),
    ]
)


class ManifestWriters:
    """`<out>/<split>.parquet` for every split, written a batch of rows at a time.

    A context manager: each split's file is written to a temp file beside it, in row
    groups of exactly `row_group_rows` rows (the last one shorter) whatever the batch
    sizes. When the `with` block ends without an error every file is finished (`finish`:
    the last rows written, the file closed) before any is renamed over
    `<out>/<split>.parquet`; on an error every temp file is removed and no manifest is
    touched. Memory is at most one row group per split, however many rows pass through.
    """

    def __init__(
        self,
        out: Path,
        *,
        classes: Sequence[str],
        metadata: dict[str, Any],
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        _check_row_group_rows(row_group_rows)  # now, not at the first split's first row
        self.out, self.classes, self.metadata = Path(out), list(classes), dict(metadata)
        self.row_group_rows = row_group_rows
        self._stack = contextlib.ExitStack()
        self._files: dict[str, _ManifestFile] = {}

    def __enter__(self) -> ManifestWriters:
        self._stack.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return _finish_then_exit(self.finish, self._stack, exc)  # then renames each file

    def finish(self) -> None:
        """Write the rows still pending and close every file, renaming none yet: call it
        last in the `with` block so a full disk fails before any manifest is replaced."""
        for file in self._files.values():
            file.finish()

    @property
    def paths(self) -> dict[str, Path]:
        """Split name -> manifest path, for the splits seen: train, val, test, then others."""
        return {split: self.out / f"{split}.parquet" for split in order_splits(self._files)}

    @property
    def finished_paths(self) -> list[Path]:
        """The finished manifests under their temp names, in `paths`' order: what can be
        read back (for the image folder) before any of them replaces an old file."""
        return [self._files[split].tmp for split in order_splits(self._files)]

    def write(self, manifest: pd.DataFrame) -> None:
        """Add rows (`MANIFEST_COLUMNS`, any splits) to their splits' files, in order."""
        for split, part in manifest.groupby("split", sort=False):
            split = str(split)
            if split not in self._files:
                path = self.out / f"{split}.parquet"
                meta = {**self.metadata, "split": split}
                self._files[split] = self._stack.enter_context(
                    _ManifestFile(path, self.classes, meta, self.row_group_rows)
                )
            self._files[split].write(part)


class _ManifestFile:
    """One manifest file: a temp file in exact row groups, renamed over `path` on success."""

    def __init__(
        self, path: Path, classes: Sequence[str], metadata: dict[str, Any], row_group_rows: int
    ) -> None:
        _check_row_group_rows(row_group_rows)
        self.path, self.row_group_rows = Path(path), row_group_rows
        self.schema = _SCHEMA.with_metadata(
            {
                b"fercleaner": json.dumps(metadata).encode(),
                b"huggingface": json.dumps({"info": {"features": hf_features(classes)}}).encode(),
            }
        )
        self._stack = contextlib.ExitStack()
        self._pending: list[pa.Table] = []

    def __enter__(self) -> _ManifestFile:
        with contextlib.ExitStack() as stack:
            self.tmp = stack.enter_context(atomic_path(self.path))
            self._writer = stack.enter_context(pq.ParquetWriter(self.tmp, self.schema))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return _finish_then_exit(self.finish, self._stack, exc)

    def write(self, part: pd.DataFrame) -> None:
        self._pending.append(_to_table(part, self.schema))
        self.flush(final=False)

    def finish(self) -> None:
        """Write the pending rows and close the file (still under its temp name)."""
        self.flush(final=True)
        self._writer.close()  # closing again on exit is a no-op

    def flush(self, *, final: bool) -> None:
        """Write every full row group pending (and the rest when `final`)."""
        rows = sum(t.num_rows for t in self._pending)
        size = self.row_group_rows
        if rows < size and not (final and rows):
            return
        table = pa.concat_tables(self._pending)
        full = rows - rows % size
        for start in range(0, full, size):
            self._writer.write_table(table.slice(start, size), row_group_size=size)
        rest = table.slice(full)
        if final and rest.num_rows:
            self._writer.write_table(rest, row_group_size=size)
            rest = rest.slice(rest.num_rows)
        self._pending = [rest] if rest.num_rows else []


def _finish_then_exit(
    finish: Callable[[], None], stack: contextlib.ExitStack, exc: tuple[Any, ...]
) -> bool | None:
    """Leave a writer's `with`: on success `finish` first, and if that fails unwind as on
    an error (every temp file removed); then exit `stack` (renames on success)."""
    if exc[0] is None:
        try:
            finish()
        except BaseException:
            stack.__exit__(*sys.exc_info())
            raise
    return stack.__exit__(*exc)


def _check_row_group_rows(row_group_rows: int) -> None:
    if row_group_rows < 1:
        raise ValueError(f"row_group_rows must be >= 1; got {row_group_rows}")


def order_splits(splits: Iterable[str]) -> list[str]:
    """Splits in manifest order: train, val, test, then the others sorted."""
    present = set(splits)
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def write_manifests(
    manifest: pd.DataFrame,
    out: Path,
    *,
    classes: Sequence[str],
    metadata: dict[str, Any],
    row_group_rows: int = ROW_GROUP_ROWS,
) -> dict[str, Path]:
    """Write `<out>/<split>.parquet` for every split present (train, val, test, then others).

    Each file is written in row groups of `row_group_rows` (see `ManifestWriters`).

    Returns:
        split name -> manifest path.
    """
    with ManifestWriters(
        out, classes=classes, metadata=metadata, row_group_rows=row_group_rows
    ) as writers:
        for split in order_splits(manifest["split"].unique()):
            writers.write(manifest[manifest["split"] == split])
    return writers.paths


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
    with _ManifestFile(Path(path), classes, metadata, row_group_rows) as file:
        for start in range(0, len(frame), row_group_rows):
            file.write(frame.iloc[start : start + row_group_rows])


def read_manifest_batches(
    paths: Iterable[Path], columns: Sequence[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Manifest rows back from their files, one row group at a time (bounded memory)."""
    for path in paths:
        for table in iter_row_groups(path, columns):
            yield table.to_pandas()


def _to_table(part: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """One row group of the manifest as an Arrow table of `schema`."""
    columns = {}
    for name in MANIFEST_COLUMNS:
        kind = schema.field(name).type
        if name == "soft_label":
            columns[name] = _list_column(part[name], kind)
        elif name in ("reviewer", "note"):
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
        "note": value("string"),
        "label_quality": value("float64"),
        "run_id": value("string"),
    }
