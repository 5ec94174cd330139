"""Read and write scores.parquet: contract columns plus JSON metadata (Parquet key `fercleaner`).

The contract is docs/architecture.md, "scores.parquet": the `SCORE_COLUMNS` always, the
crowd columns (`fercleaner.scoring.crowd.CROWD_COLUMNS`: `votes` list<float32> or null,
`vote_count`, `consensus_label`, `consensus_quality`) when the dataset had votes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fercleaner.arrays import to_matrix
from fercleaner.atomic import atomic_path
from fercleaner.errors import ScoresFormatError
from fercleaner.row_groups import iter_row_groups
from fercleaner.scoring.assemble import DISTRIBUTION_COLUMNS, SCORE_COLUMNS
from fercleaner.scoring.columns import ScoreColumns
from fercleaner.scoring.crowd import CROWD_COLUMNS
from fercleaner.scoring.issue_types import ISSUE_TYPES

#: Parquet file-metadata key holding the run's JSON metadata.
METADATA_KEY = b"fercleaner"
#: Metadata entries every scores file must carry.
REQUIRED_METADATA = ("classes", "method", "recipe")
#: Columns that hold a class name.
_LABEL_COLUMNS = ("given_label", "predicted_label", "proposed_label")
#: Optional crowd columns that hold a class name, a [0, 1] value, or a per-class list.
_CROWD_LABEL, _CROWD_QUALITY, _CROWD_LIST = "consensus_label", "consensus_quality", "votes"
_LIST_TYPES = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
#: Row order of a run's scores file: most suspect first (ascending `label_quality`, ties
#: by `sample_id`), the order review shows, so opening a 1M-row run need not sort it.
SCORES_ORDER = ("label_quality", "sample_id")
#: Rows per Parquet row group of a scores file: `ScoresStream.batches` (export) then
#: holds one group at a time, however many rows the run has.
SCORES_ROW_GROUP_ROWS = 65_536


def sort_most_suspect_first(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in `SCORES_ORDER` (stable), indexed 0..N-1; no rows move when already so."""
    if is_most_suspect_first(frame):
        return frame.reset_index(drop=True)
    return frame.sort_values(list(SCORES_ORDER), kind="stable").reset_index(drop=True)


def is_most_suspect_first(frame: pd.DataFrame) -> bool:
    """Whether the rows are in `SCORES_ORDER` (one vectorised pass; NaN quality: False)."""
    quality_column, id_column = SCORES_ORDER
    quality = frame[quality_column].to_numpy(dtype=np.float64)
    if len(quality) < 2:
        return not np.isnan(quality).any()
    before, after = quality[:-1], quality[1:]
    if not (after >= before).all():
        return False
    ties = np.flatnonzero(before == after)  # only these need their sample_ids compared
    ids = frame[id_column]
    later = ids.iloc[ties + 1].to_numpy(dtype=object)
    return bool((later >= ids.iloc[ties].to_numpy(dtype=object)).all())


@dataclass(frozen=True)
class ScoresFile:
    """A validated scores file: the frame, its metadata and the ordered class names."""

    frame: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)

    def matrix(self, column: str = "pred_probs") -> np.ndarray:
        """(N, C) float32 array of a list column such as `pred_probs` or `soft_label`."""
        if column not in self.frame.columns:
            raise ScoresFormatError(f"scores file has no column {column!r}")
        return to_matrix(self.frame[column], dtype=np.float32, width=len(self.classes))


def write_scores(
    scores: pd.DataFrame | ScoreColumns,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any],
    order: np.ndarray | None = None,
) -> Path:
    """Atomically write the scores to `path` as Parquet with `metadata` as JSON under key
    `fercleaner`, in row groups of `SCORES_ROW_GROUP_ROWS`.

    `metadata` must contain `classes`, `method` and `recipe`; list columns are stored as
    list<float32> (`votes` with nulls for images without votes). `ScoreColumns` (what a
    run writes) are written `order`'s rows (default: all, as they are) a row group at a
    time, so no frame of every row is built; a frame is written in its own order.
    Returns the path written.
    """
    missing_meta = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing_meta:
        raise ScoresFormatError(
            f"scores metadata lacks {missing_meta}; it must contain {list(REQUIRED_METADATA)}"
        )
    missing = [c for c in (*SCORE_COLUMNS, "path") if c not in scores.columns]
    if missing:
        raise ScoresFormatError(
            f"cannot write scores to {path}: the scores lack columns {missing}; "
            "build them with fercleaner.scoring.assemble_scores"
        )
    if isinstance(scores, pd.DataFrame):
        if order is not None:
            raise ValueError("`order` is for ScoreColumns; sort a frame before writing it")
        parts: Iterator[pd.DataFrame] = iter([scores])
    else:
        rows = np.arange(len(scores)) if order is None else np.asarray(order)
        starts = range(0, max(len(rows), 1), SCORES_ROW_GROUP_ROWS)
        parts = (scores.frame(rows[s : s + SCORES_ROW_GROUP_ROWS]) for s in starts)
    meta = json.dumps(dict(metadata), default=str).encode()
    path = Path(path)
    with atomic_path(path) as tmp, contextlib.ExitStack() as stack:
        writer = None
        for part in parts:
            table = _to_arrow(part)
            if writer is None:
                schema = table.schema.with_metadata(
                    {**(table.schema.metadata or {}), METADATA_KEY: meta}
                )
                writer = stack.enter_context(pq.ParquetWriter(tmp, schema))
            writer.write_table(table.cast(writer.schema), row_group_size=SCORES_ROW_GROUP_ROWS)
    return path


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A scores frame as Arrow: list columns list<float32>, text as text."""
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if name == "votes":
            values = [None if v is None else np.asarray(v, dtype=np.float32) for v in series]
            columns[name] = pa.array(values, type=pa.list_(pa.float32()))
        elif name in DISTRIBUTION_COLUMNS or (
            series.dtype == object and len(series) and isinstance(series.iloc[0], np.ndarray)
        ):
            values = [np.asarray(v, dtype=np.float32) for v in series]
            columns[name] = pa.array(values, type=pa.list_(pa.float32()))
        else:
            columns[name] = pa.array(
                series.to_numpy(dtype=object) if series.dtype == object else series
            )
    return pa.table(columns)


def read_scores(path: str | os.PathLike[str]) -> ScoresFile:
    """Read and validate a scores file written by `write_scores`.

    Raises:
        ScoresFormatError: the file is missing, not Parquet, lacks the `fercleaner`
            metadata or contract columns (named), or holds values outside the contract.
    """
    stream = open_scores(path)
    try:
        table = pq.read_table(stream.path)
    except (pa.ArrowException, OSError) as exc:
        raise ScoresFormatError(f"{stream.path} is not a readable Parquet file ({exc})") from None
    frame = _validated_frame(table, stream.classes, stream.path, first_row=0)
    return ScoresFile(frame=frame, metadata=stream.metadata, classes=stream.classes)


@dataclass(frozen=True)
class ScoresStream:
    """A scores file opened for reading in batches: its header checked, no row read yet.

    Memory stays at one row group however large the file (`write_scores` writes groups
    of `SCORES_ROW_GROUP_ROWS`; a file written as one group is read whole, then sliced).
    """

    path: Path
    metadata: dict[str, Any]
    classes: list[str]
    num_rows: int
    schema: pa.Schema
    """The file's columns and their types (its footer)."""

    def batches(self, rows: int = SCORES_ROW_GROUP_ROWS) -> Iterator[tuple[int, pd.DataFrame]]:
        """Yield `(first_row, frame)` for consecutive batches of at most `rows` rows (a
        batch never spans a row group), in stored order, each validated like
        `read_scores` (errors name the row in the file).

        Raises:
            ScoresFormatError: as `read_scores`, at the batch holding the first bad row.
        """
        if rows < 1:
            raise ValueError(f"rows must be >= 1; got {rows}")
        first_row = 0
        try:
            for table in iter_row_groups(self.path):
                for start in range(0, table.num_rows, rows):
                    part = table.slice(start, rows)
                    yield first_row, _validated_frame(part, self.classes, self.path, first_row)
                    first_row += part.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise ScoresFormatError(f"{self.path} is not a readable Parquet file ({exc})") from None


def open_scores(path: str | os.PathLike[str]) -> ScoresStream:
    """Open a scores file for `ScoresStream.batches`: check it exists, is Parquet, and has
    the contract columns and metadata (reads the footer only).

    Raises:
        ScoresFormatError: as `read_scores`, for everything the footer tells.
    """
    path = Path(path)
    if not path.is_file():
        raise ScoresFormatError(
            f"no scores file at {path}; run `fercleaner score DATASET --out RUN_DIR` to "
            "create RUN_DIR/scores.parquet"
        )
    try:
        footer = pq.ParquetFile(path)
        schema, num_rows = footer.schema_arrow, footer.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise ScoresFormatError(f"{path} is not a readable Parquet file ({exc})") from None
    missing = [c for c in (*SCORE_COLUMNS, "path") if c not in schema.names]
    raw_meta = (schema.metadata or {}).get(METADATA_KEY)
    if raw_meta is None or missing:
        what = []
        if missing:
            what.append(f"lacks columns {missing}")
        if raw_meta is None:
            what.append("has no 'fercleaner' metadata")
        raise ScoresFormatError(
            f"{path} is not a fercleaner scores file: it {' and '.join(what)}; "
            "re-create it with `fercleaner score`"
        )
    try:
        metadata = json.loads(raw_meta)
    except ValueError:
        raise ScoresFormatError(f"{path}: the 'fercleaner' metadata is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise ScoresFormatError(f"{path}: the 'fercleaner' metadata is not a JSON object")
    missing_meta = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing_meta:
        raise ScoresFormatError(f"{path}: the 'fercleaner' metadata lacks {missing_meta}")
    classes = metadata["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ScoresFormatError(
            f"{path}: metadata 'classes' must be a non-empty list of names; got {classes!r}"
        )
    return ScoresStream(
        path=path, metadata=metadata, classes=list(classes), num_rows=num_rows, schema=schema
    )


def _validated_frame(
    table: pa.Table, classes: list[str], path: Path, first_row: int
) -> pd.DataFrame:
    """`table` as pandas after the contract checks (rows named from `first_row` on)."""
    lengths = {c: _list_lengths(table, c, path) for c in (*DISTRIBUTION_COLUMNS, _CROWD_LIST)}
    frame = table.to_pandas()
    _check_values(frame, classes, path, lengths, first_row)
    for column in DISTRIBUTION_COLUMNS + (_CROWD_LIST,):
        if column in table.column_names:
            _check_list_values(table.column(column), column, path, first_row, len(classes))
    return frame


def _check_list_values(
    values: pa.ChunkedArray, column: str, path: Path, first_row: int, num_classes: int
) -> None:
    """Raise ScoresFormatError naming the first row whose list holds a value that is not
    finite or is negative, or (`pred_probs`, `soft_label`) sums to 0: downstream, an
    argmax of NaN is class 0 and a soft label of NaN trains nothing. Lengths are checked."""
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False).astype(np.float64)
    bad_value = ~(np.isfinite(flat) & (flat >= 0))
    if column != _CROWD_LIST:  # every row holds one value per class (checked before)
        bad_row = bad_value.reshape(-1, num_classes).any(axis=1)
        bad_row |= ~(flat.reshape(-1, num_classes).sum(axis=1) > 0)
        rows = np.flatnonzero(bad_row)
    else:
        parents = pc.list_parent_indices(values).to_numpy(zero_copy_only=False)
        rows = parents[bad_value][:1]
    if len(rows):
        row = int(rows[0])
        shown = values[row].as_py()
        raise ScoresFormatError(
            f"{path}: row {first_row + row} column {column!r} holds {shown}; expected"
            f" {'vote counts' if column == _CROWD_LIST else 'probabilities'}: finite,"
            " not negative"
            + ("" if column == _CROWD_LIST else ", summing to more than 0")
            + " (re-create the file with `fercleaner score`)"
        )


def _list_lengths(table: pa.Table, column: str, path: Path) -> np.ndarray | None:
    """(N,) values per row of a list column, -1 for a null row (vectorised: a million rows
    in milliseconds); None when the column is absent."""
    if column not in table.column_names:
        return None
    values = table.column(column)
    kind = values.type
    if not any(is_list(kind) for is_list in _LIST_TYPES):
        raise ScoresFormatError(
            f"{path}: column {column!r} holds {kind}, not one list of numbers per row"
            " (re-create the file with `fercleaner score`)"
        )
    return pc.list_value_length(values).fill_null(-1).to_numpy()


def _check_values(
    frame: pd.DataFrame,
    classes: list[str],
    path: Path,
    lengths: dict[str, np.ndarray | None],
    first_row: int,
) -> None:
    """Raise ScoresFormatError naming the first row (in the file: `first_row` + the row in
    `frame`) and value that breaks the contract."""
    crowd = [c for c in CROWD_COLUMNS if c in frame.columns]
    if crowd and len(crowd) != len(CROWD_COLUMNS):
        missing = [c for c in CROWD_COLUMNS if c not in frame.columns]
        raise ScoresFormatError(
            f"{path}: has crowd columns {crowd} but lacks {missing}; they come together"
            " (re-create the file with `fercleaner score`)"
        )
    for column in _LABEL_COLUMNS + ((_CROWD_LABEL,) if crowd else ()):
        bad = ~frame[column].isin(classes)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ScoresFormatError(
                f"{path}: row {first_row + row} column {column!r} holds"
                f" {frame[column].iloc[row]!r}, not one of the classes {classes}"
            )
    bad = ~frame["issue_type"].isin(ISSUE_TYPES)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ScoresFormatError(
            f"{path}: row {first_row + row} issue_type {frame['issue_type'].iloc[row]!r} "
            f"is not one of {list(ISSUE_TYPES)}"
        )
    for column in ("label_quality",) + ((_CROWD_QUALITY,) if crowd else ()):
        quality = frame[column].to_numpy(dtype=float)
        bad = ~((quality >= 0) & (quality <= 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ScoresFormatError(
                f"{path}: row {first_row + row} {column} {quality[row]!r} is outside [0, 1]"
            )
    for column in DISTRIBUTION_COLUMNS + ((_CROWD_LIST,) if crowd else ()):
        nullable = column == _CROWD_LIST
        counts = lengths[column]
        bad = (counts != len(classes)) & ~(nullable & (counts == -1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ScoresFormatError(
                f"{path}: row {first_row + row} column {column!r} has {counts[row]} values; "
                f"expected one per class ({len(classes)})"
            )
