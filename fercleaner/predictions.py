"""A user's own model predictions as scoring input: read, validate and align them to a dataset.

`fercleaner score DATASET --predictions FILE` skips training and scores the dataset's
labels with the probabilities in FILE (see `fercleaner.scoring.score_labels`). The file
is input like a dataset: every problem is one error naming the file, the row or id and
what to do. Formats, keyed by `sample_id` (the image path relative to the dataset root,
as `fercleaner inspect` lists it):

- Parquet: a `sample_id` column and one float column per class, named by the dataset's
  class names; optionally an `embedding` list column.
- `.npz`: arrays `sample_id` (N,) str, `pred_probs` (N, K) with columns in the dataset's
  class order, optionally `embeddings` (N, D).
- `.npy`: a structured array with a `sample_id` field and one float field per class name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fercleaner.arrays import to_matrix
from fercleaner.errors import FercleanerError
from fercleaner.scoring.api import ROW_SUM_TOLERANCE

#: Suffixes `read_predictions` understands.
PREDICTION_SUFFIXES = (".parquet", ".npz", ".npy")


class PredictionsError(FercleanerError):
    """Predictions file unreadable, incomplete or not probabilities over the dataset's classes."""


@dataclass(frozen=True)
class Predictions:
    """Probabilities (and optional embeddings) aligned to the dataset's samples."""

    pred_probs: np.ndarray
    """(N, K) rows in the order of the requested sample ids, columns in class order."""
    embeddings: np.ndarray | None
    """(N, D) or None."""
    ignored_ids: int
    """Rows of the file for samples the dataset does not list (or excluded)."""


def read_predictions(
    path: str | os.PathLike[str], *, classes: list[str], sample_ids: list[str]
) -> Predictions:
    """Read `path` and return its rows for `sample_ids` (every one must be there).

    Raises:
        PredictionsError: unreadable file, unknown format, missing or duplicate ids,
            columns that are not the classes, or rows that are not probability vectors.
    """
    path = Path(path)
    if path.suffix.lower() not in PREDICTION_SUFFIXES:
        raise PredictionsError(
            f"{path}: unknown predictions format {path.suffix!r}; use "
            f"{', '.join(PREDICTION_SUFFIXES)} (see `fercleaner score --help`)"
        )
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    try:
        ids, probs, embeddings = _load(path, classes)
    except PredictionsError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise PredictionsError(f"{path}: cannot be read as predictions ({exc})") from None
    return _align(path, ids, probs, embeddings, sample_ids)


def _load(path: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("sample_id", "pred_probs") if k not in data.files]
            if missing:
                raise PredictionsError(
                    f"{path}: lacks arrays {missing}; it has {data.files}. Save with "
                    "np.savez(FILE, sample_id=ids, pred_probs=probs[, embeddings=features])"
                )
            probs = np.asarray(data["pred_probs"], dtype=np.float64)
            if probs.ndim != 2 or probs.shape[1] != len(classes):
                raise PredictionsError(
                    f"{path}: pred_probs has shape {probs.shape}; expected (N, {len(classes)}) "
                    f"with columns in the dataset's class order {classes}"
                )
            ids = data["sample_id"].astype(str)
            if ids.ndim != 1 or len(ids) != len(probs):
                raise PredictionsError(
                    f"{path}: sample_id has shape {ids.shape} but pred_probs has {len(probs)} "
                    "rows; save one sample_id per row of pred_probs, in the same order"
                )
            embeddings = data["embeddings"] if "embeddings" in data.files else None
            return ids, probs, embeddings
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.dtype.names is None:
            raise PredictionsError(
                f"{path}: a plain array has no sample ids; save a structured array with a "
                "`sample_id` field and one field per class, or use .npz / .parquet"
            )
        frame = pd.DataFrame({name: array[name] for name in array.dtype.names})
    else:
        frame = pd.read_parquet(path)
    if "sample_id" not in frame.columns:
        raise PredictionsError(f"{path}: no `sample_id` column; it has {list(frame.columns)}")
    extra = [c for c in frame.columns if c not in (*classes, "sample_id", "embedding")]
    absent = [c for c in classes if c not in frame.columns]
    if absent or extra:
        raise PredictionsError(
            f"{path}: probability columns must be the dataset's classes {classes}; "
            f"missing {absent}, unexpected {extra}"
        )
    embeddings = to_matrix(frame["embedding"]) if "embedding" in frame.columns else None
    probs = frame[classes].to_numpy(dtype=np.float64)
    return frame["sample_id"].astype(str).to_numpy(), probs, embeddings


def _align(
    path: Path,
    ids: np.ndarray,
    probs: np.ndarray,
    embeddings: np.ndarray | None,
    sample_ids: list[str],
) -> Predictions:
    duplicated = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(duplicated):
        raise PredictionsError(
            f"{path}: sample_id {duplicated[0]!r} appears more than once "
            f"({len(duplicated)} repeated ids); keep one row per image"
        )
    row_of = pd.Series(np.arange(len(ids)), index=ids)
    missing = [s for s in sample_ids if s not in row_of.index]
    if missing:
        raise PredictionsError(
            f"{path}: no prediction for {len(missing)} of the dataset's {len(sample_ids)} "
            f"images (first: {', '.join(repr(s) for s in missing[:3])}); predict every image "
            "`fercleaner inspect` lists, keyed by that sample_id"
        )
    rows = row_of.loc[sample_ids].to_numpy()
    probs = probs[rows]
    bad = (
        ~np.isfinite(probs).all(axis=1)
        | (probs < -1e-6).any(axis=1)
        | (probs > 1 + 1e-6).any(axis=1)
    )
    bad |= np.abs(probs.sum(axis=1) - 1) > ROW_SUM_TOLERANCE
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise PredictionsError(
            f"{path}: {int(bad.sum())} rows are not probability vectors (first: sample_id "
            f"{sample_ids[first]!r}, values {np.round(probs[first], 4).tolist()}); each row "
            "must be in [0, 1] and sum to 1: apply a softmax to logits"
        )
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or len(embeddings) != len(ids) or not np.isfinite(embeddings).all():
            raise PredictionsError(
                f"{path}: embeddings must be a finite (N, D) array with one row per sample_id; "
                f"got shape {embeddings.shape}"
            )
        embeddings = embeddings[rows]
    return Predictions(probs, embeddings, ignored_ids=len(ids) - len(sample_ids))
