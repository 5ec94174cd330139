"""The names of the files in a run directory, and the errors of a run directory that cannot be used.

Every module that names a file in RUN_DIR takes the name from here (docs/architecture.md,
"Run directory").
"""

from __future__ import annotations

import os
from pathlib import Path

from fercleaner.errors import FercleanerError

#: The scores table (the contract of docs/architecture.md, "scores.parquet").
SCORES_FILE = "scores.parquet"
#: Resolved recipe, classes, versions, seed, timings, counts; written last.
RUN_FILE = "run.json"
#: Ingestion and decode problems (the samples left out of the run).
PROBLEMS_FILE = "problems.parquet"
#: Per-sample, per-epoch training signals.
DYNAMICS_FILE = "dynamics.parquet"
#: Relabel events of the methods that relabel while training.
EVENTS_FILE = "events.parquet"
#: Per-epoch checkpoints, `checkpoints/<method>/fold<k>.pt` (resume).
CHECKPOINTS_DIR = "checkpoints"
#: Review decisions (SQLite, append-only events; `fercleaner.review.store`).
STORE_FILE = "review.sqlite"

#: The files `fercleaner score` writes atomically, in the order it writes them.
RUN_FILES: tuple[str, ...] = (SCORES_FILE, PROBLEMS_FILE, DYNAMICS_FILE, EVENTS_FILE, RUN_FILE)


class RunError(FercleanerError):
    """A run directory is missing, holds no usable scores, or does not match its own record."""


class SamplePathError(RunError):
    """A scores row names an image outside the run's recorded dataset root."""


def scores_path(run_dir: str | os.PathLike[str]) -> Path:
    """Where the scores table of `run_dir` lives (whether or not it exists)."""
    return Path(run_dir) / SCORES_FILE
