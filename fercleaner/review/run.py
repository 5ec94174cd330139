"""Open a scored run for review and export: its scores table, classes and image allow-list.

Review and export read only `RUN_DIR/scores.parquet` (which carries each sample's image
path) and `RUN_DIR/review.sqlite`; they never need the dataset reader or torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fercleaner.errors import FercleanerError, ScoresFormatError
from fercleaner.review.store import DEFAULT_BUSY_TIMEOUT_S, DecisionStore, store_path
from fercleaner.scoring import SCORE_COLUMNS, read_scores

SCORES_FILENAME = "scores.parquet"

#: Columns review and export rely on: the scores contract plus each sample's image path.
REVIEW_COLUMNS: tuple[str, ...] = (*SCORE_COLUMNS, "path")

#: Contract columns that are not per-method signals.
_CONTRACT_COLUMNS = frozenset(REVIEW_COLUMNS)


class RunError(FercleanerError):
    """A run directory is missing or holds no usable scores."""


class ImageNotInRunError(FercleanerError):
    """An image was requested that is not one of the run's samples."""


@dataclass(frozen=True)
class ReviewRun:
    """A scored run ready for review.

    Attributes:
        run_dir: the run directory.
        scores: the scores table sorted by `label_quality` ascending (most suspect first),
            indexed 0..N-1 in that order; `sample_id` is unique.
        classes: class names in the order of `pred_probs` / `soft_label`.
        metadata: the scores file's `fercleaner` metadata.
        method_columns: per-method signal columns (scalar ones), for display.
    """

    run_dir: Path
    scores: pd.DataFrame
    classes: list[str]
    metadata: dict[str, Any]
    method_columns: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        """The run's id from the scores metadata (the folder name when absent)."""
        return str(self.metadata.get("run_id") or self.run_dir.name)

    @property
    def store_path(self) -> Path:
        """Where this run's review decisions live."""
        return store_path(self.run_dir)

    def open_store(self, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> DecisionStore:
        """Open (creating on first use) this run's decision store; see `DecisionStore`."""
        return DecisionStore(self.store_path, busy_timeout_s=busy_timeout_s)

    def has_sample(self, sample_id: str) -> bool:
        """Whether `sample_id` is one of the run's samples."""
        return sample_id in self._positions

    def row(self, sample_id: str) -> pd.Series:
        """The scores row of `sample_id`, or ImageNotInRunError if it is not in the run."""
        pos = self._positions.get(sample_id)
        if pos is None:
            raise ImageNotInRunError(
                f"sample {sample_id!r} is not in run {self.run_dir}; only the run's own "
                "samples can be shown"
            )
        return self.scores.iloc[pos]

    def image_path(self, sample_id: str) -> Path:
        """The image file of one of the run's samples; anything else is refused.

        The app asks for images by `sample_id` only, so no request can name a path outside
        the run's samples.
        """
        path = Path(str(self.row(sample_id)["path"]))
        if not path.is_file():
            raise ImageNotInRunError(
                f"image of sample {sample_id!r} is missing at {path}; was the dataset moved? "
                "Re-run `fercleaner score` on its new location"
            )
        return path

    @property
    def _positions(self) -> dict[str, int]:
        cached = self.__dict__.get("_positions_cache")
        if cached is None:
            cached = {sid: i for i, sid in enumerate(self.scores["sample_id"].tolist())}
            object.__setattr__(self, "_positions_cache", cached)
        return cached


def open_run(run_dir: str | os.PathLike[str]) -> ReviewRun:
    """Read and validate a run directory's scores for review or export.

    Raises:
        RunError: the folder or its scores file is missing.
        ScoresFormatError: the scores file is malformed or foreign (names what is missing).
    """
    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise RunError(
            f"run directory {run_dir} does not exist; pass the --out of `fercleaner score`"
        )
    path = run_dir / SCORES_FILENAME
    if not path.is_file():
        raise RunError(
            f"{run_dir} has no {SCORES_FILENAME}; it is not a scored run. "
            "Run `fercleaner score DATASET --out RUN_DIR` first"
        )
    scores_file = read_scores(path)  # validates columns, metadata and values
    frame, metadata, classes = scores_file.frame, dict(scores_file.metadata), scores_file.classes
    _check_unique_ids(frame, path)
    frame = (
        frame.sort_values(["label_quality", "sample_id"], kind="stable")
        .reset_index(drop=True)
        .astype({"label_quality": "float64", "uncertainty": "float64", "is_label_issue": bool})
    )
    method_columns = [
        c
        for c in frame.columns
        if c not in _CONTRACT_COLUMNS
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return ReviewRun(
        run_dir=run_dir,
        scores=frame,
        classes=classes,
        metadata=metadata,
        method_columns=method_columns,
    )


def _check_unique_ids(frame: pd.DataFrame, path: Path) -> None:
    """Decisions join on `sample_id`, so it must name one row."""
    dup = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(dup):
        raise ScoresFormatError(
            f"{path} lists sample_id {dup.iloc[0]!r} more than once; sample ids must be unique"
        )
