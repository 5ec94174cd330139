"""Open a run directory like any other input: find its scores, validate them, check image paths.

`read_run` is the one way review, the review launcher and the demo open a run;
`stream_run` opens it for reading in batches (export, whose memory must not grow with
the run). Beyond the scores contract (`fercleaner.scoring.read_scores`) both check that
sample ids are unique and that every image `path` lies under the dataset root the run
records, so a doctored run cannot make export copy, or the app show, any other file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fercleaner.errors import ScoresFormatError
from fercleaner.runs.layout import RUN_FILE, SCORES_FILE, RunError, SamplePathError, scores_path
from fercleaner.scoring import SCORES_ROW_GROUP_ROWS, ScoresStream, open_scores, read_scores

_RESCORE = "re-run `fercleaner score` on the dataset to write the run again"


@dataclass(frozen=True)
class Run:
    """A validated run directory.

    Attributes:
        run_dir: the run directory (absolute, symbolic links resolved).
        scores: the scores table as stored (from `RunStream.batches`: one batch of it);
            `sample_id` is unique and every `path` lies under `dataset_root`.
        classes: class names in the order of `pred_probs` / `soft_label`.
        metadata: the scores file's `fercleaner` metadata.
    """

    run_dir: Path
    scores: pd.DataFrame
    classes: list[str]
    metadata: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The run's id from the scores metadata (the folder name when absent)."""
        return str(self.metadata.get("run_id") or self.run_dir.name)

    @property
    def scores_path(self) -> Path:
        """The run's scores file."""
        return scores_path(self.run_dir)

    @property
    def dataset_root(self) -> Path:
        """The dataset folder the run was scored from; every image lies under it."""
        return Path(self.metadata["dataset_root"])


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read and validate a run directory written by `fercleaner score`.

    Raises:
        RunError: the folder or its scores file is missing, or its path is not UTF-8.
        ScoresFormatError: the scores file is malformed or foreign (names what is wrong),
            repeats a sample id, or records no absolute `dataset_root`.
        SamplePathError: a row's image path is not absolute or lies outside the dataset
            root (names the file, the row, the sample and the path).
    """
    run_dir, path = _find_scores(run_dir)
    scores_file = read_scores(path)  # validates columns, metadata and values
    frame, metadata = scores_file.frame, dict(scores_file.metadata)
    _check_run_record(run_dir, metadata)
    _check_unique_ids(frame, path)
    check_sample_paths(frame, _dataset_root(metadata, path), source=path)
    return Run(run_dir=run_dir, scores=frame, classes=scores_file.classes, metadata=metadata)


@dataclass(frozen=True)
class RunStream:
    """A run opened for reading in batches (`stream_run`): the header is checked, no row read.

    Attributes:
        header: the run with an empty scores table (its columns, no rows).
        scores: its scores file, opened (footer and metadata checked).
        dataset_root: the root every image path must lie under.
    """

    header: Run
    scores: ScoresStream
    dataset_root: str

    @property
    def num_rows(self) -> int:
        """Rows in the scores file."""
        return self.scores.num_rows

    def batches(self, rows: int = SCORES_ROW_GROUP_ROWS) -> Iterator[Run]:
        """Yield the run in stored order, at most `rows` rows at a time (a batch never
        spans a Parquet row group), each batch checked as `read_run` checks the whole table.

        Sample ids are checked unique across batches with an 8-byte hash per row, so the
        memory that grows with the run is 8 bytes a row; the check of the last batch is
        only complete once the generator has finished.

        Raises:
            ScoresFormatError, SamplePathError: as `read_run` (the row named in the file).
        """
        path = self.scores.path
        hashes = []
        for first_row, frame in self.scores.batches(rows):
            _check_unique_ids(frame, path)
            check_sample_paths(frame, self.dataset_root, source=path, first_row=first_row)
            hashes.append(pd.util.hash_pandas_object(frame["sample_id"], index=False).to_numpy())
            yield replace(self.header, scores=frame)
        seen = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        del hashes
        seen.sort()  # in place: no second copy of the hashes
        if (seen[1:] == seen[:-1]).any():  # a repeat, or (rarely) a hash collision
            ids = pq.read_table(path, columns=["sample_id"]).column(0).to_pandas()
            _check_unique_ids(pd.DataFrame({"sample_id": ids}), path)


def stream_run(run_dir: str | os.PathLike[str]) -> RunStream:
    """Open a run directory for `RunStream.batches` (memory one batch, not the whole run).

    Raises:
        RunError, ScoresFormatError: as `read_run`, for the folder, the file's footer and
            its metadata; row errors come from `RunStream.batches`.
    """
    run_dir, path = _find_scores(run_dir)
    stream = open_scores(path)
    metadata = dict(stream.metadata)
    _check_run_record(run_dir, metadata)
    root = _dataset_root(metadata, path)  # refuse a run without one before any row is read
    columns = stream.schema.empty_table().to_pandas()
    header = Run(run_dir=run_dir, scores=columns, classes=stream.classes, metadata=metadata)
    return RunStream(header=header, scores=stream, dataset_root=root)


def _check_run_record(run_dir: Path, metadata: dict[str, Any]) -> None:
    """Refuse a run whose run.json names another run than its scores file.

    `fercleaner score` writes the scores, the other tables, then run.json last, each
    atomically; a kill in between leaves the new scores beside the previous run's
    run.json (and maybe its problems and dynamics), a mix no reader should use.
    """
    try:
        recorded = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return  # no record (a run written through the library) or not ours to judge
    scored = metadata.get("run_id")
    if recorded and scored and recorded != scored:
        raise RunError(
            f"{run_dir}: {SCORES_FILE} is from run {scored} but {RUN_FILE} from run "
            f"{recorded}: `fercleaner score` is writing this folder or stopped while it did."
            " Once no score runs there, run the same score command again (add --resume if"
            " it trained: finished training is not redone)"
        )


def _find_scores(run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(the run directory resolved, its scores file), or RunError saying what is missing."""
    run_dir = Path(run_dir).expanduser().resolve()
    if not run_dir.is_dir():
        raise RunError(
            f"run directory {run_dir} does not exist; pass the --out of `fercleaner score`"
        )
    path = scores_path(run_dir)
    if not path.is_file():
        raise RunError(
            f"{run_dir} has no {SCORES_FILE}; it is not a scored run. "
            "Run `fercleaner score DATASET --out RUN_DIR` first"
        )
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:  # pyarrow opens files by UTF-8 name only
        shown = os.fsencode(run_dir).decode("utf-8", "backslashreplace")
        raise RunError(
            f"run directory {shown} is not valid UTF-8, so its {SCORES_FILE} cannot be read;"
            " rename the folder (or one above it) to a UTF-8 name"
        ) from None
    return run_dir, path


def check_sample_paths(
    frame: pd.DataFrame, root: str, *, source: str | os.PathLike[str], first_row: int = 0
) -> None:
    """Refuse any row whose image `path` is not an absolute path under `root`.

    The test is on the names, with `.` and `..` resolved (`os.path.normpath`), not on the
    file system: the dataset reader already refused symbolic links that leave the root
    unless the run was scored with `--follow-links`, and a link it followed keeps its
    name under the root.

    Args:
        frame: a scores table (`sample_id`, `path`).
        root: the run's recorded dataset root, absolute.
        source: the scores file, for the message.
        first_row: the row of `source` that `frame`'s first row is (a batch's offset).

    Raises:
        SamplePathError: names `source`, the row (0-based, as stored), the sample, the
            path and the root.
    """
    root = os.path.normpath(root)
    prefix = root if root.endswith(os.sep) else root + os.sep
    paths = frame["path"]
    missing = paths.isna().to_numpy()
    text = paths.fillna("").astype(str)
    # fast path: under the prefix with no `.`-led part or empty part for normpath to fold
    plain = text.str.startswith(prefix) & ~text.str.contains(os.sep + ".", regex=False)
    plain &= ~text.str.contains(os.sep + os.sep, regex=False) & ~text.str.contains("\x00")
    for row in (~plain.to_numpy() | missing).nonzero()[0]:
        value = None if missing[row] else text.iloc[row]
        reason = _path_problem(value, root)
        if reason is not None:
            sample = frame["sample_id"].iloc[row]
            raise SamplePathError(
                f"{source}: row {first_row + row} (sample {sample!r}) {reason}; review and"
                f" export read only images under the dataset root the run records ({root!r})."
                f" If the dataset moved, {_RESCORE}"
            )


def _path_problem(path: str | None, root: str) -> str | None:
    """Why `path` is not an image path under `root` (None: it is one)."""
    if not path:
        return "has no image path"
    if "\x00" in path:
        return f"names the image {path!r}, which contains a NUL character"
    if not os.path.isabs(path):
        return f"names the image {path!r}, which is not an absolute path"
    normal = os.path.normpath(path)
    if os.path.commonpath([normal, root]) != root:
        return f"names the image {path!r}, which lies outside the dataset root"
    return None


def _dataset_root(metadata: dict[str, Any], path: Path) -> str:
    """The run's recorded dataset root; without one no image path can be checked."""
    root = metadata.get("dataset_root")
    if not isinstance(root, str) or not os.path.isabs(root) or "\x00" in root:
        what = (
            "has no dataset_root"
            if root is None
            else f"records dataset_root {root!r}, not an absolute path"
        )
        raise ScoresFormatError(
            f"{path}: the 'fercleaner' metadata {what} (the dataset folder every image must lie"
            f" under), so the image paths cannot be checked; {_RESCORE}"
        )
    return root


def _check_unique_ids(frame: pd.DataFrame, path: Path) -> None:
    """Decisions join on `sample_id`, so it must name one row."""
    dup = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(dup):
        raise ScoresFormatError(
            f"{path} lists sample_id {dup.iloc[0]!r} more than once; sample ids must be unique"
        )
