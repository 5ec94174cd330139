"""Open a scored run for review: its scores most suspect first, its decision store, its images.

The run is read and validated by `fercleaner.runs.read_run` (the scores contract, unique
sample ids, every image under the run's dataset root); review reads only
`RUN_DIR/scores.parquet` (which carries each sample's image path) and
`RUN_DIR/review.sqlite`, never the dataset reader or torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fercleaner.errors import FercleanerError
from fercleaner.review.store import DEFAULT_BUSY_TIMEOUT_S, DecisionStore
from fercleaner.runs import STORE_FILE, Run, RunError, read_run
from fercleaner.scoring import SCORE_COLUMNS, sort_most_suspect_first

__all__ = ["REVIEW_COLUMNS", "ImageNotInRunError", "ReviewRun", "RunError", "open_run"]

#: Columns review and export rely on: the scores contract plus each sample's image path.
REVIEW_COLUMNS: tuple[str, ...] = (*SCORE_COLUMNS, "path")

#: Contract columns that are not per-method signals.
_CONTRACT_COLUMNS = frozenset(REVIEW_COLUMNS)


class ImageNotInRunError(FercleanerError):
    """An image was requested that is not one of the run's samples."""


@dataclass(frozen=True)
class ReviewRun(Run):
    """A scored run ready for review (see `fercleaner.runs.Run` for the other attributes).

    Attributes:
        scores: the scores table sorted by `label_quality` ascending (most suspect first),
            indexed 0..N-1 in that order; `sample_id` is unique.
        method_columns: per-method signal columns (scalar ones), for display.
    """

    method_columns: list[str] = field(default_factory=list)

    @property
    def store_path(self) -> Path:
        """Where this run's review decisions live."""
        return self.run_dir / STORE_FILE

    def open_store(
        self, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S, memory_map: bool = False
    ) -> DecisionStore:
        """Open (creating on first use) this run's decision store; see `DecisionStore`."""
        return DecisionStore(self.store_path, busy_timeout_s=busy_timeout_s, memory_map=memory_map)

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

        The app asks for images by `sample_id` only, and `read_run` checked that every
        sample's path lies under the run's dataset root, so no request can reach a file
        outside the dataset.
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
    """Read and validate a run directory (`fercleaner.runs.read_run`) for review.

    Raises:
        RunError: the folder or its scores file is missing, or an image path lies outside
            the run's dataset root (`SamplePathError`).
        ScoresFormatError: the scores file is malformed or foreign (names what is wrong).
    """
    run = read_run(run_dir)
    # runs written by `fercleaner score` are stored in this order: then nothing moves
    frame = sort_most_suspect_first(run.scores).astype(
        {"label_quality": "float64", "uncertainty": "float64", "is_label_issue": bool}
    )
    method_columns = [
        c
        for c in frame.columns
        if c not in _CONTRACT_COLUMNS
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return ReviewRun(
        run_dir=run.run_dir,
        scores=frame,
        classes=run.classes,
        metadata=run.metadata,
        method_columns=method_columns,
    )
