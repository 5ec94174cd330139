"""Queue queries: which samples a reviewer sees next, most suspect first.

Pure pandas over the scores table (already sorted by `label_quality` ascending) and the
current decisions; vectorised masks keep a query on 100k rows in the milliseconds.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

ISSUE_TYPES: tuple[str, ...] = ("mislabeled", "ambiguous", "outlier", "none")
FLAGGED_ISSUE_TYPES: tuple[str, ...] = ("mislabeled", "ambiguous", "outlier")


@dataclass(frozen=True)
class QueueFilter:
    """What to show; an empty collection or None means "no restriction" for that field.

    Attributes:
        issue_types: keep these `issue_type` values (default: every flagged type).
        given: keep these given labels.
        proposed: keep these proposed labels.
        pairs: keep these (given, proposed) pairs.
        splits: keep these splits.
        reviewed: True = only decided samples, False = only undecided, None = both.
    """

    issue_types: Collection[str] | None = FLAGGED_ISSUE_TYPES
    given: Collection[str] | None = None
    proposed: Collection[str] | None = None
    pairs: Collection[tuple[str, str]] | None = None
    splits: Collection[str] | None = None
    reviewed: bool | None = None


def find_queue(scores: pd.DataFrame, decided_ids: Collection[str], flt: QueueFilter) -> np.ndarray:
    """Row positions of `scores` that pass `flt`, in `label_quality` order (lowest first).

    Args:
        scores: the run's scores table, sorted by `label_quality` ascending.
        decided_ids: sample ids that have a current decision.
        flt: the filter.

    Returns:
        int64 positions (K,) into `scores`.
    """
    mask = np.ones(len(scores), dtype=bool)
    for column, allowed in (
        ("issue_type", flt.issue_types),
        ("given_label", flt.given),
        ("proposed_label", flt.proposed),
        ("split", flt.splits),
    ):
        if allowed:
            mask &= scores[column].isin(list(allowed)).to_numpy()
    if flt.pairs:
        pairs = {(str(g), str(p)) for g, p in flt.pairs}
        given = scores["given_label"].to_numpy(dtype=object)
        proposed = scores["proposed_label"].to_numpy(dtype=object)
        mask &= find_members(zip(given, proposed, strict=True), pairs, len(scores))
    kept = np.flatnonzero(mask)
    if flt.reviewed is not None:
        # only the rows the other filters kept (~10% flagged by default): the id lookup is
        # the one per-row Python step of a query, ~0.4 s over a million ids
        ids = scores["sample_id"].iloc[kept].to_numpy(dtype=object)
        is_decided = find_members(ids, decided_ids, len(kept))
        kept = kept[is_decided if flt.reviewed else ~is_decided]
    return kept


def find_members(values: Iterable[object], allowed: Collection[object], n: int) -> np.ndarray:
    """Boolean mask (n,) of `values` found in the set `allowed`.

    A hash lookup per value: pandas 3's `Series.isin` on string columns takes ~0.8 s for
    100k ids against a 100k list, this takes ~0.02 s.
    """
    allowed = allowed if isinstance(allowed, (set, frozenset)) else set(allowed)
    return np.fromiter((v in allowed for v in values), dtype=bool, count=n)


def join_decisions(scores: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """`scores` with the current decision's `action`, `label`, `reviewer`... beside each row.

    Samples without a decision get missing values; column names are prefixed `decision_`.
    """
    cols = ["sample_id", "action", "label", "soft_label", "reviewer", "decided_at", "note"]
    right = decisions[cols].rename(columns={c: f"decision_{c}" for c in cols[1:]})
    return scores.merge(right, on="sample_id", how="left", validate="one_to_one")


def find_pairs(scores: pd.DataFrame) -> pd.DataFrame:
    """Given->proposed pairs among flagged samples whose proposal differs, most common first.

    Returns:
        Columns `given_label`, `proposed_label`, `count`.
    """
    flagged = scores[
        scores["is_label_issue"].to_numpy() & (scores["given_label"] != scores["proposed_label"])
    ]
    counts = (
        flagged.groupby(["given_label", "proposed_label"], observed=True)
        .size()
        .rename("count")
        .reset_index()
        .sort_values(["count", "given_label", "proposed_label"], ascending=[False, True, True])
    )
    return counts.reset_index(drop=True)
