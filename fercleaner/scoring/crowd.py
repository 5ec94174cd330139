"""Crowd votes in the scores: the consensus of the votes and the model, its flags and columns.

`fercleaner score` calls `get_sample_votes` on the sample table (FERPlus / fer2013new.csv
`votes`, RAF-DB `label_distribution`, the csv layout's `votes_<class>` columns) and, when
any image has votes, `apply_crowd_votes` on the assembled scores. The consensus itself is
`fercleaner.scoring.consensus.get_consensus` (one-coin Dawid-Skene with the model as
prior, the run's label quality put in at the given label); this module decides what it
changes in scores.parquet (docs/scoring.md, "Crowd votes"): the soft label of a voted
image becomes the expected vote distribution (the votes and the model,
`Consensus.vote_distribution`), every image's label quality becomes the consensus
posterior at the given label (with no votes, the run's belief at the calibrated
temperature; one scale for all), an image whose given label disagrees with a
confident consensus is flagged `mislabeled`, a model flag on an image whose two or more
votes confidently back its given label is cleared, and a flagged voted image proposes the
consensus label. Without votes the scores are returned untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.scoring.columns import ScoreColumns
from fercleaner.scoring.consensus import get_consensus, get_model_prior

#: Columns `apply_crowd_votes` adds to scores.parquet (only when some image has votes).
CROWD_COLUMNS = ("votes", "vote_count", "consensus_label", "consensus_quality")
#: Sample-table columns that carry votes, in order of precedence (counts over a distribution).
VOTE_SOURCES = ("votes", "label_distribution")
#: A consensus at least this probable is "confident" (more than every other class together).
MIN_CONSENSUS_QUALITY = 0.5


@dataclass(frozen=True)
class CrowdScores:
    """The scores after the crowd spoke, and what the run summary says about it."""

    scores: pd.DataFrame | ScoreColumns
    """The scores, of the input's kind (the input itself when no image had votes)."""
    summary: dict[str, Any] | None
    """Counts and fitted values for run.json's `consensus` entry; None without votes."""


def get_sample_votes(samples: pd.DataFrame, classes: Sequence[str]) -> np.ndarray | None:
    """(N, K) float64 votes per sample over `classes`; None when no sample has any.

    `votes` (per-class counts, or a distribution from the csv layout) wins over
    `label_distribution` (RAF-DB). Whole numbers are counts of people; a row with any
    fractional value, like every RAF-DB distribution, is normalised to sum 1: one
    annotation spread over the classes. A null cell or an all-zero row is an image nobody
    labelled (a zero row).

    Raises:
        ValueError: a cell has not one value per class, or a negative / non-finite value
            (names the sample).
    """
    k = len(classes)
    out = np.zeros((len(samples), k), dtype=np.float64)
    filled = np.zeros(len(samples), dtype=bool)
    ids = samples["sample_id"].astype(str).to_numpy() if "sample_id" in samples else None
    for column in VOTE_SOURCES:
        if column not in samples.columns:
            continue
        for row, value in enumerate(samples[column].to_numpy(dtype=object)):
            if filled[row] or _is_null(value):
                continue
            vec = np.asarray(value, dtype=np.float64).reshape(-1)
            where = f"sample {ids[row]!r}" if ids is not None else f"row {row}"
            if vec.shape != (k,):
                raise ValueError(
                    f"{where}: {column} has {vec.size} values; expected one per class"
                    f" {list(classes)}"
                )
            if not np.isfinite(vec).all() or (vec < 0).any():
                raise ValueError(f"{where}: {column} {vec.tolist()} must be finite and >= 0")
            total = vec.sum()
            if total > 0:
                # whole numbers are counts of people; anything else is a distribution,
                # which counts as one annotation spread over the classes
                whole = column != "label_distribution" and np.allclose(vec, np.round(vec))
                out[row] = vec if whole else vec / total
                filled[row] = True
    return out if filled.any() else None


def _is_null(value: object) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def find_consensus_issues(
    labels: np.ndarray,
    consensus_label: np.ndarray,
    consensus_quality: np.ndarray,
    vote_count: np.ndarray,
    *,
    min_quality: float = MIN_CONSENSUS_QUALITY,
) -> np.ndarray:
    """(N,) bool: the crowd voted, and the given label disagrees with a confident consensus.

    Args:
        labels: (N,) given class indices.
        consensus_label: (N,) consensus class indices.
        consensus_quality: (N,) posterior of the consensus class, in [0, 1].
        vote_count: (N,) annotations per image (0 = the model alone: never flagged here).
        min_quality: the consensus must be at least this probable.
    """
    labels = np.asarray(labels, dtype=np.int64)
    consensus_label = np.asarray(consensus_label, dtype=np.int64)
    quality = np.asarray(consensus_quality, dtype=np.float64)
    votes = np.asarray(vote_count, dtype=np.float64)
    if not (labels.shape == consensus_label.shape == quality.shape == votes.shape):
        raise ValueError(
            f"labels {labels.shape}, consensus_label {consensus_label.shape}, consensus_quality"
            f" {quality.shape} and vote_count {votes.shape} must have one shape (N,)"
        )
    return (votes > 0) & (consensus_label != labels) & (quality >= min_quality)


def apply_crowd_votes(
    scores: pd.DataFrame | ScoreColumns,
    votes: np.ndarray | None,
    classes: Sequence[str],
    *,
    min_quality: float = MIN_CONSENSUS_QUALITY,
) -> CrowdScores:
    """Combine the votes with the scores' `pred_probs` and write the consensus into the scores.

    Args:
        scores: the assembled scores, a frame (`fercleaner.scoring.assemble_scores`) or
            columns (`assemble_columns`, what a run uses).
        votes: (N, K) from `get_sample_votes`, rows following `scores`; None = no votes.
        classes: class names of the probability columns.
        min_quality: the consensus flag's confidence (see `find_consensus_issues`).

    Returns:
        Without votes, `scores` itself and no summary. With votes, new scores of the same
        kind with the `CROWD_COLUMNS` before `path`; voted rows take the expected vote
        distribution as `soft_label`, every row the posterior at the given label as
        `label_quality`; rows the consensus flags become `mislabeled` issues; flagged
        voted rows propose the consensus label where it differs from the given one.
    """
    if votes is None:
        return CrowdScores(scores=scores, summary=None)
    if isinstance(scores, pd.DataFrame):
        crowd = apply_crowd_votes(
            ScoreColumns.from_frame(scores), votes, classes, min_quality=min_quality
        )
        return CrowdScores(
            scores=crowd.scores.frame().set_axis(scores.index), summary=crowd.summary
        )
    columns = scores.columns
    classes = list(classes)
    k = len(classes)
    index = {name: i for i, name in enumerate(classes)}
    labels = pd.Series(columns["given_label"]).astype(str).map(index).to_numpy(dtype=np.int64)
    probs = np.asarray(columns["pred_probs"], dtype=np.float64).reshape(-1, k)
    old_quality = np.asarray(columns["label_quality"])
    # the run's label quality (its method's evidence, training dynamics) speaks for the model
    consensus = get_consensus(votes, get_model_prior(probs, labels, old_quality))
    voted = consensus.votes > 0
    disagrees = find_consensus_issues(
        labels, consensus.label, consensus.quality, consensus.votes, min_quality=min_quality
    )
    was_flagged = np.asarray(columns["is_label_issue"], dtype=bool)
    # a crowd of two or more that confidently backs the given label overrules the model's
    # flag (one vote cannot: it is usually the given label itself)
    backs = (
        (consensus.votes >= 2) & (consensus.label == labels) & (consensus.quality >= min_quality)
    )
    cleared = was_flagged & backs
    flags = (was_flagged & ~cleared) | disagrees
    names = np.array(classes, dtype=object)
    soft = np.array(columns["soft_label"], dtype=np.float32).reshape(-1, k)
    soft[voted] = consensus.vote_distribution[voted]
    # the consensus's belief in the given label (CROWDLAB's label quality) ranks every
    # image: an unvoted one's is the run's belief at the calibrated temperature T, so voted
    # and unvoted images share one scale
    quality = consensus.soft_label[np.arange(len(labels)), labels]
    issue_type = np.asarray(columns["issue_type"], dtype=object).copy()
    issue_type[disagrees] = "mislabeled"
    issue_type[cleared] = "none"
    old_proposed = np.asarray(columns["proposed_label"], dtype=object)
    proposed = old_proposed.copy()
    proposed[cleared] = names[labels[cleared]]  # unflagged: the given label stands
    relabel = flags & voted & (consensus.label != labels)
    proposed[relabel] = names[consensus.label[relabel]]
    crowd = scores.replace(
        label_quality=quality.astype(old_quality.dtype),
        proposed_label=proposed,
        is_label_issue=flags,
        issue_type=issue_type,
        soft_label=soft,
        votes=votes.astype(np.float32),
        vote_count=consensus.votes,
        consensus_label=names[consensus.label],
        consensus_quality=consensus.quality,
    )
    crowd = ScoreColumns(crowd.columns, {**crowd.null_rows, "votes": ~voted})
    summary = {
        "images_with_votes": int(voted.sum()),
        "images_with_one_vote": int((voted & (consensus.votes <= 1.0 + 1e-3)).sum()),
        "images_without_votes": int((~voted).sum()),
        "annotator_accuracy": round(float(consensus.annotator_accuracy), 4),
        "temperature": round(float(consensus.temperature), 4),
        "model_weight": round(float(consensus.model_weight), 4),
        "vote_temperature": round(float(consensus.vote_temperature), 4),
        "min_quality": float(min_quality),
        "disagreements": int(disagrees.sum()),
        "flags_from_consensus": int((disagrees & ~was_flagged).sum()),
        "flags_cleared_by_consensus": int(cleared.sum()),
        "proposals_from_consensus": int((relabel & (old_proposed != proposed)).sum()),
    }
    return CrowdScores(scores=crowd, summary=summary)


def describe_consensus(summary: dict[str, Any]) -> str:
    """One line for the printed run summary: who had votes, the fit, the flags it added."""
    return (
        f"crowd votes: {summary['images_with_votes']:,} images with votes"
        f" ({summary['images_with_one_vote']:,} with one), {summary['images_without_votes']:,}"
        f" without (the model alone); annotator accuracy {summary['annotator_accuracy']:.3f},"
        f" model temperature {summary['temperature']:.2f}, worth"
        f" {summary['model_weight']:.2g} vote(s) at temperature"
        f" {summary['vote_temperature']:.2f} in the soft labels;"
        f" {summary['flags_from_consensus']:,}"
        f" flag(s) from the consensus ({summary['disagreements']:,} given labels disagree with"
        f" a consensus >= {summary['min_quality']:g}), {summary['flags_cleared_by_consensus']:,}"
        f" model flag(s) cleared by a crowd that backs the given label"
    )
