"""Write a run directory: the scores, problems, dynamics and events tables, then run.json.

Every file is written beside its target, fsynced and renamed over it (`fercleaner.atomic`),
so a kill leaves either the old or the new version; run.json is written last.
`remove_stale_run_temporaries` deletes the temp files a `kill -9` mid-write left behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner.atomic import atomic_path, remove_stale_temporaries, write_json_atomic
from fercleaner.runs.layout import (
    DYNAMICS_FILE,
    EVENTS_FILE,
    PROBLEMS_FILE,
    RUN_FILE,
    RUN_FILES,
    scores_path,
)
from fercleaner.scoring.columns import ScoreColumns


def write_run_tables(
    run_dir: str | os.PathLike[str],
    *,
    scores: pd.DataFrame | ScoreColumns,
    metadata: Mapping[str, Any],
    problems: pd.DataFrame,
    dynamics: pd.DataFrame | Iterable[pd.DataFrame | pa.Table],
    events: pd.DataFrame,
) -> Path:
    """Write the four tables of a run (creating `run_dir`); return the scores file's path.

    The scores are stored most suspect first (`fercleaner.scoring.SCORES_ORDER`), the
    order review shows them in.

    Args:
        run_dir: the run directory.
        scores: the scores, a frame (`fercleaner.scoring.assemble_scores`) or columns
            (`assemble_columns`: written a row group at a time, no frame of every row).
        metadata: the scores file's `fercleaner` metadata (`classes`, `method`, `recipe`,
            `run_id`, `dataset_root`, ...; see docs/architecture.md).
        problems: ingestion and decode problems.
        dynamics: per-sample per-epoch training signals: a frame, or its parts (one
            epoch of one fold each), written a part per row group so the whole table
            (epochs x N rows) is never in memory.
        events: relabel events.
    """
    from fercleaner.scoring import sort_most_suspect_first, write_scores

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(scores, pd.DataFrame):
        path = write_scores(
            sort_most_suspect_first(scores), scores_path(run_dir), metadata=metadata
        )
    else:
        path = write_scores(
            scores, scores_path(run_dir), metadata=metadata, order=scores.most_suspect_first()
        )
    write_table_atomic(problems, run_dir / PROBLEMS_FILE)
    if isinstance(dynamics, pd.DataFrame):
        write_table_atomic(dynamics, run_dir / DYNAMICS_FILE)
    else:
        write_tables_atomic(dynamics, run_dir / DYNAMICS_FILE)
    write_table_atomic(events, run_dir / EVENTS_FILE)
    return path


def write_run_info(run_dir: str | os.PathLike[str], info: Mapping[str, Any]) -> Path:
    """Write run.json (indented JSON) atomically; return its path."""
    path = Path(run_dir) / RUN_FILE
    write_json_atomic(path, dict(info))
    return path


def write_table_atomic(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Atomic Parquet write; object columns holding mixed values are stored as strings."""
    with atomic_path(path) as tmp:
        _as_text(frame).to_parquet(tmp, index=False)


def write_tables_atomic(
    parts: Iterable[pd.DataFrame | pa.Table], path: str | os.PathLike[str]
) -> None:
    """Atomic Parquet write of a table given in parts (memory: one part), pandas or Arrow.

    Each part is written as its own row group (split further past pyarrow's default
    group size); the first part sets the column types and later parts are cast to them,
    so the parts must have the same columns and types. No parts: a table with no columns.
    """
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(path))
        writer = None
        for part in parts:
            table = (
                part
                if isinstance(part, pa.Table)
                else pa.Table.from_pandas(_as_text(part), preserve_index=False)
            )
            if writer is None:
                writer = stack.enter_context(pq.ParquetWriter(tmp, table.schema))
            writer.write_table(table.cast(writer.schema))
        if writer is None:
            pd.DataFrame().to_parquet(tmp, index=False)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with object columns that mix values and text stored as text; a copy only
    when one changes (the caller's frame is never modified)."""
    out = frame
    for name in frame.columns:
        values = frame[name]
        if (
            values.dtype == object
            and not values.map(lambda v: v is None or isinstance(v, str)).all()
        ):
            out = out.copy(deep=False) if out is frame else out
            out[name] = values.map(lambda v: None if v is None else str(v))
    return out


def remove_stale_run_temporaries(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files of the run files a killed writer left in `run_dir` (not in checkpoints/).

    Call it only while no other process writes the run (a live writer's temp file would be
    deleted under it). Returns the removed paths, sorted.
    """
    return remove_stale_temporaries(run_dir, targets=set(RUN_FILES))
