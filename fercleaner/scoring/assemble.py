"""Build the scores.parquet frame from the sample table and the readouts of one training run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.scoring.columns import ScoreColumns
from fercleaner.scoring.combine import combine_sources
from fercleaner.scoring.flags import find_label_issues
from fercleaner.scoring.issue_types import _issue_types, propose_labels
from fercleaner.scoring.thresholds import _thresholds

#: Sample-table columns `assemble_scores` needs.
SAMPLE_COLUMNS = ("sample_id", "split", "given_label", "path")
#: Contract columns of scores.parquet, in order (method columns follow, then `path`).
SCORE_COLUMNS = (
    "sample_id",
    "split",
    "given_label",
    "predicted_label",
    "proposed_label",
    "label_quality",
    "is_label_issue",
    "issue_type",
    "uncertainty",
    "pred_probs",
    "soft_label",
)
#: Columns holding one float32 list per row, over the classes.
DISTRIBUTION_COLUMNS = ("pred_probs", "soft_label")


def assemble_scores(
    samples: pd.DataFrame,
    classes: Sequence[str],
    readouts: Mapping[str, Mapping[str, np.ndarray]],
    **options: Any,
) -> pd.DataFrame:
    """The scores frame of docs/architecture.md: `assemble_columns` with the same
    arguments (`method_name`, `combine`, `weights`, `flag_rule`), as one frame."""
    return assemble_columns(samples, classes, readouts, **options).frame()


def assemble_columns(
    samples: pd.DataFrame,
    classes: Sequence[str],
    readouts: Mapping[str, Mapping[str, np.ndarray]],
    *,
    method_name: str,
    combine: str = "rank_mean",
    weights: Mapping[str, float] | None = None,
    flag_rule: str = "noise_rate",
) -> ScoreColumns:
    """The scores of docs/architecture.md as columns (a frame's rows are built on demand).

    Args:
        samples: sample table with at least `sample_id, split, given_label, path`, rows
            in the same order as the readout arrays.
        classes: ordered class names; readout columns follow this order.
        readouts: {source name: readout dict} (see `Method.readout`); `method_name` is the
            primary source, others (e.g. `dynamics`) are combined with it.
        method_name: the trained method; its `pred_probs` give `predicted_label`.
        combine: combination rule (see `fercleaner.scoring.combine`).
        weights: per-source weights for the combination.
        flag_rule: `is_label_issue` rule (see `fercleaner.scoring.flags`).

    Returns:
        One row per sample: the contract columns, `<source>_<column>` for every source's
        signals and method columns, then `path`; list columns as (N, k) float32.
    """
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(f"sample table lacks columns {missing}; it has {list(samples.columns)}")
    classes = list(classes)
    index = {name: i for i, name in enumerate(classes)}
    given_names = samples["given_label"].astype(str).to_numpy()
    unknown = ~np.isin(given_names, classes)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise ValueError(
            f"sample {samples['sample_id'].iloc[row]!r} has given_label {given_names[row]!r}, "
            f"which is not among the classes {classes}"
        )
    labels = np.array([index[name] for name in given_names], dtype=np.int64)
    if method_name not in readouts:
        raise ValueError(f"no readout for method {method_name!r}; sources are {sorted(readouts)}")
    n = len(samples)
    for source, readout in readouts.items():
        for key, value in readout.items():
            if len(value) != n:
                raise ValueError(
                    f"readout {source!r} array {key!r} has {len(value)} rows; "
                    f"the sample table has {n}"
                )
        for key in ("pred_probs", "soft_label"):
            if key in readout and np.shape(readout[key])[1:] != (len(classes),):
                raise ValueError(
                    f"readout {source!r} array {key!r} has shape {np.shape(readout[key])}; "
                    f"expected ({n}, {len(classes)}) over classes {classes}"
                )

    combined = combine_sources(readouts, primary=method_name, rule=combine, weights=weights)
    is_issue = find_label_issues(
        labels, combined.pred_probs, rule=flag_rule, label_quality=combined.label_quality
    )
    soft_thresholds = _thresholds(labels, combined.soft_label)
    issue_type = _issue_types(
        labels, combined.soft_label, is_issue, combined.uncertainty, soft_thresholds
    )
    proposed = propose_labels(labels, combined.soft_label, issue_type=issue_type)
    names = np.array(classes, dtype=object)
    columns = {
        "sample_id": _text(samples["sample_id"]),
        "split": _text(samples["split"]),
        "given_label": _text(samples["given_label"]),
        "predicted_label": names[combined.pred_probs.argmax(axis=1)],
        "proposed_label": names[proposed],
        "label_quality": combined.label_quality,
        "is_label_issue": is_issue,
        "issue_type": issue_type,
        "uncertainty": combined.uncertainty,
        "pred_probs": np.asarray(combined.pred_probs, dtype=np.float32),
        "soft_label": np.asarray(combined.soft_label, dtype=np.float32),
    }
    extra: dict[str, np.ndarray] = {}
    for source, readout in readouts.items():
        for key, value in readout.items():
            shared = any(key in r for name, r in readouts.items() if name != method_name)
            if source == method_name and key in DISTRIBUTION_COLUMNS and not shared:
                continue  # the contract columns are exactly this source's arrays
            value = np.asarray(value)
            extra[f"{source}_{key}"] = value.astype(np.float32) if value.ndim == 2 else value
    clash = sorted(set(extra) & set(columns))
    if clash:
        raise ValueError(f"readout columns {clash} would replace contract columns of the scores")
    return ScoreColumns({**columns, **extra, "path": _text(samples["path"])})


def _text(series: pd.Series):
    """A text column as pandas' string array: Arrow-backed, no Python object per row."""
    return series.astype(str).array
