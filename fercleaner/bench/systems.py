"""What a benchmark compares: fercleaner's scores file and reference scores from probabilities.

`from_scores_frame` reads fercleaner's own decisions unchanged. `get_reference_scores`
turns probabilities into cleanlab's reading (`cleanlab.filter.find_label_issues`,
`cleanlab.rank.get_label_quality_scores`), as the `cleanlab_cv5` reference uses it on
out-of-fold probabilities (`fercleaner.bench.references` builds both references). Proposed
label = argmax probability; soft label = the probabilities; uncertainty = normalised entropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fercleaner.arrays import get_normalized_entropy, to_matrix
from fercleaner.bench.metrics import (
    get_correction_accuracy,
    get_detection_metrics,
    get_reliability_curve,
    get_soft_label_metrics,
    get_soft_label_reliability,
)
from fercleaner.errors import FercleanerError


@dataclass
class SystemScores:
    """One system's per-sample outputs over the benchmark's samples (rows follow `sample_ids`)."""

    name: str
    sample_ids: np.ndarray
    label_quality: np.ndarray
    is_label_issue: np.ndarray
    proposed_label: np.ndarray
    """(N,) class names."""
    soft_label: np.ndarray
    """(N, C) over the benchmark's classes."""
    uncertainty: np.ndarray
    cost: dict[str, float] = field(default_factory=dict)
    """wall_s and peak_rss_mb of everything the system ran."""
    notes: str = ""
    consensus_label: np.ndarray | None = None
    """(N,) class names the system believes true when that is not its proposal (fercleaner
    with votes: `consensus_label` for every image, proposals only for flagged ones)."""


def from_scores_frame(name: str, frame: pd.DataFrame, classes: Sequence[str]) -> SystemScores:
    """A SystemScores from a scores.parquet frame (fercleaner's own decisions, unchanged)."""
    soft = to_matrix(frame["soft_label"])
    if soft.shape[1] != len(classes):
        raise FercleanerError(
            f"system {name!r} scored {soft.shape[1]} classes; the benchmark has {len(classes)}"
        )
    return SystemScores(
        name=name,
        sample_ids=frame["sample_id"].astype(str).to_numpy(),
        label_quality=frame["label_quality"].to_numpy(dtype=np.float64),
        is_label_issue=frame["is_label_issue"].to_numpy(dtype=bool),
        proposed_label=frame["proposed_label"].astype(str).to_numpy(dtype=object),
        soft_label=soft,
        uncertainty=frame["uncertainty"].to_numpy(dtype=np.float64),
    )


def get_reference_scores(
    name: str,
    sample_ids: np.ndarray,
    labels: np.ndarray,
    pred_probs: np.ndarray,
    classes: Sequence[str],
    *,
    quality: str,
) -> SystemScores:
    """A reference system from probabilities: cleanlab's flags, label quality by `quality`.

    Args:
        quality: `cleanlab` (cleanlab.rank.get_label_quality_scores, its default
            self-confidence on these probabilities) or `self_confidence` (p[given]).
    """
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        raise FercleanerError(
            "the cleanlab reference needs cleanlab >= 2.9: pip install 'fercleaner[bench]'"
        ) from None
    probs = np.asarray(pred_probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    labels = np.asarray(labels, dtype=np.int64)
    if quality == "cleanlab":
        label_quality = get_label_quality_scores(labels, probs)
    elif quality == "self_confidence":
        label_quality = probs[np.arange(len(labels)), labels]
    else:
        raise ValueError(
            f"unknown reference quality {quality!r}; use 'cleanlab' or 'self_confidence'"
        )
    flags = _cleanlab_flags(find_label_issues, labels, probs)
    return SystemScores(
        name=name,
        sample_ids=np.asarray(sample_ids, dtype=object),
        label_quality=np.asarray(label_quality, dtype=np.float64),
        is_label_issue=np.asarray(flags, dtype=bool),
        proposed_label=np.array(classes, dtype=object)[probs.argmax(axis=1)],
        soft_label=probs,
        uncertainty=get_normalized_entropy(probs),
    )


def align_columns(
    matrix: np.ndarray, from_classes: Sequence[str], to_classes: Sequence[str]
) -> np.ndarray:
    """Re-index (N, len(from)) columns to `to_classes`; an unseen class gets probability 0."""
    unknown = sorted(set(from_classes) - set(to_classes))
    if unknown:
        raise FercleanerError(
            f"scores use classes {unknown} that the benchmark dataset lacks ({list(to_classes)})"
        )
    aligned = np.zeros((len(matrix), len(to_classes)), dtype=np.float64)
    for i, name in enumerate(from_classes):
        aligned[:, list(to_classes).index(name)] = matrix[:, i]
    return aligned


def _cleanlab_flags(find_label_issues, labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab needs every class present among the labels; score absent classes out, then flag."""
    present = np.unique(labels)
    if len(present) == probs.shape[1]:
        return find_label_issues(labels, probs)
    remap = {k: i for i, k in enumerate(present)}
    sub = probs[:, present]
    sub = sub / np.maximum(sub.sum(axis=1, keepdims=True), 1e-12)
    return find_label_issues(np.array([remap[k] for k in labels]), sub)


def evaluate_system(
    system: SystemScores, truth: pd.DataFrame, classes: Sequence[str]
) -> dict[str, object]:
    """All metrics of one system against the truth table (joined on sample_id)."""
    frame = pd.DataFrame(
        {"sample_id": system.sample_ids, "_row": np.arange(len(system.sample_ids))}
    )
    joined = truth.merge(frame, on="sample_id", how="inner")
    missing = len(truth) - len(joined)
    if len(joined) == 0:
        raise FercleanerError(
            f"system {system.name!r} scored none of the benchmark's samples "
            f"(first truth id {truth['sample_id'].iloc[0]!r}, "
            f"first scored id {system.sample_ids[0]!r})"
        )
    rows = joined["_row"].to_numpy()
    is_noisy = joined["is_noisy"].to_numpy(dtype=bool)
    quality = system.label_quality[rows]
    flags = system.is_label_issue[rows]
    metrics: dict[str, object] = get_detection_metrics(is_noisy, quality, flags)
    metrics["correction_accuracy"] = get_correction_accuracy(
        joined["true_label"].to_numpy(dtype=object),
        system.proposed_label[rows],
        is_noisy=is_noisy,
        is_label_issue=flags,
    )
    if "votes" in joined.columns:
        votes = to_matrix(joined["votes"])
        metrics.update(
            get_soft_label_metrics(votes, system.soft_label[rows], system.uncertainty[rows])
        )
        soft_reliability = get_soft_label_reliability(votes, system.soft_label[rows])
        metrics["soft_label_ece"] = soft_reliability.pop("ece")
        metrics["soft_label_top_ece"] = soft_reliability.pop("top_ece")
        metrics["soft_reliability"] = soft_reliability
    metrics["reliability"] = get_reliability_curve(quality, is_noisy)
    metrics["samples_scored"] = int(len(joined))
    metrics["samples_missing"] = int(missing)
    metrics.update(system.cost)
    return metrics
