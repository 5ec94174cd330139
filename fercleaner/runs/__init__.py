"""The run directory `fercleaner score` writes: its file names, writing it, and opening it again.

`layout` names the files (nobody else spells them), `write` writes them atomically,
`record` lays out the scores metadata and run.json, and `read` opens a run like any other
input (`read_run`: the scores contract, unique sample ids, every image under the dataset
root; `stream_run`: the same, a batch at a time). Review, the review launcher, export,
bench and the demo go through here.
"""

from __future__ import annotations

from fercleaner.runs.layout import (
    CHECKPOINTS_DIR,
    DYNAMICS_FILE,
    EVENTS_FILE,
    PROBLEMS_FILE,
    RUN_FILE,
    RUN_FILES,
    SCORES_FILE,
    STORE_FILE,
    RunError,
    SamplePathError,
    scores_path,
)
from fercleaner.runs.read import Run, RunStream, check_sample_paths, read_run, stream_run
from fercleaner.runs.record import (
    build_run_info,
    build_scores_metadata,
    get_dataset_fingerprint,
    summarize_scores,
)
from fercleaner.runs.write import (
    remove_stale_run_temporaries,
    write_run_info,
    write_run_tables,
    write_table_atomic,
    write_tables_atomic,
)

__all__ = [
    "CHECKPOINTS_DIR",
    "DYNAMICS_FILE",
    "EVENTS_FILE",
    "PROBLEMS_FILE",
    "RUN_FILE",
    "RUN_FILES",
    "SCORES_FILE",
    "STORE_FILE",
    "Run",
    "RunError",
    "RunStream",
    "SamplePathError",
    "build_run_info",
    "build_scores_metadata",
    "check_sample_paths",
    "get_dataset_fingerprint",
    "read_run",
    "remove_stale_run_temporaries",
    "scores_path",
    "stream_run",
    "summarize_scores",
    "write_run_info",
    "write_run_tables",
    "write_table_atomic",
    "write_tables_atomic",
]
