"""Combine readouts (methods, training dynamics) into one label_quality, soft_label, uncertainty.

Sources speak different scales (a softmax probability, a mean over epochs, a learned
confidence), so the default rule combines *ranks*: each source's label_quality_signal
becomes its percentile rank (average rank for ties, (rank - 0.5) / N, in (0, 1)), and the
weighted mean of those ranks orders the samples. That mean is then mapped back through
the primary source's own distribution of values (quantile mapping), so label_quality
keeps the rank average's order *and* the primary's scale (a probability when the
primary's signal is p[given]; the reliability plot stays meaningful). Uncertainty is
combined the same way.
Distributions (pred_probs, soft_label) are weighted means over the sources that have
them (the primary source must have `pred_probs`). With one source every rule returns that
source's raw signals unchanged.

Rules: `rank_mean` (default), `mean` (weighted mean of raw signals, all already in [0, 1]
for label quality), `primary` (only the primary source; the others become columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from fercleaner.arrays import get_entropy

#: Combination rules `combine_sources` understands.
COMBINE_RULES = ("rank_mean", "mean", "primary")
#: Share of the rank mean blended into a quantile-mapped value to keep the order at ties.
_ORDER_SLIVER = 1e-6


@dataclass(frozen=True)
class CombinedReadout:
    """The combined per-sample arrays the scores contract needs."""

    pred_probs: np.ndarray
    """(N, C) float64 class probabilities."""
    soft_label: np.ndarray
    """(N, C) float64 proposed label distribution (rows sum to 1)."""
    uncertainty: np.ndarray
    """(N,) float64, higher = less certain."""
    label_quality: np.ndarray
    """(N,) float64 in [0, 1], low = given label suspect."""


def combine_sources(
    readouts: Mapping[str, Mapping[str, np.ndarray]],
    *,
    primary: str,
    rule: str = "rank_mean",
    weights: Mapping[str, float] | None = None,
) -> CombinedReadout:
    """Combine {source: {pred_probs, soft_label, uncertainty, label_quality_signal, ...}} readouts.

    Args:
        readouts: per source, arrays over the same N samples in the same order. The
            primary needs `pred_probs`; other sources may carry only some keys.
        primary: the source whose `pred_probs` are the model's prediction.
        rule: one of COMBINE_RULES.
        weights: per-source weight (default 1 each); a weight of 0 drops a source.
    """
    if rule not in COMBINE_RULES:
        raise ValueError(
            f"unknown combination rule {rule!r}; choose one of {', '.join(COMBINE_RULES)}"
        )
    if primary not in readouts:
        raise ValueError(f"primary source {primary!r} is not among the readouts {sorted(readouts)}")
    if "pred_probs" not in readouts[primary]:
        raise ValueError(
            f"primary source {primary!r} has no pred_probs; it has {sorted(readouts[primary])}"
        )
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(readouts))
    if unknown:
        raise ValueError(f"weights name unknown sources {unknown}; sources are {sorted(readouts)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"source weights must be >= 0; got {weights}")
    sources = [primary] if rule == "primary" else [s for s in readouts if weights.get(s, 1.0) > 0]
    if primary not in sources:
        sources.insert(0, primary)
    n = len(readouts[primary]["pred_probs"])
    for source in sources:
        for key, value in readouts[source].items():
            if len(value) != n:
                raise ValueError(
                    f"source {source!r} array {key!r} has {len(value)} rows; {primary!r} has {n}"
                )

    def weighted(key: str, transform) -> np.ndarray | None:
        """Weighted mean over the sources that have `key`; per row over those with a value
        (a NaN is a source that does not speak for that sample, e.g. dynamics for a sample
        outside the training splits)."""
        have = [s for s in sources if key in readouts[s]]
        if not have:
            return None
        if len(have) == 1:
            return np.asarray(readouts[have[0]][key], dtype=np.float64)
        w = np.array([weights.get(s, 1.0) for s in have], dtype=np.float64)
        stacked = np.stack(
            [transform(np.asarray(readouts[s][key], dtype=np.float64)) for s in have]
        )
        present = np.isfinite(stacked)
        shape = (len(have),) + (1,) * (stacked.ndim - 1)
        w_present = np.where(present, w.reshape(shape), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w_present * np.where(present, stacked, 0.0)).sum(axis=0) / w_present.sum(axis=0)

    identity = lambda a: a  # noqa: E731
    signal = _percentile_rank if rule == "rank_mean" else identity

    def back_to_scale(key: str, combined: np.ndarray | None) -> np.ndarray | None:
        """Rank means -> quantiles of the primary's values (or the first source's with `key`)."""
        have = [s for s in sources if key in readouts[s]]
        if combined is None or rule != "rank_mean" or len(have) < 2:
            return combined
        scale = np.asarray(readouts[primary if primary in have else have[0]][key], dtype=np.float64)
        mapped = np.quantile(scale, np.clip((combined * n - 0.5) / max(n - 1, 1), 0.0, 1.0))
        # Where the primary has ties (a saturated probability), the quantiles are equal for
        # different rank means; a sliver of the rank mean keeps their order, within the
        # primary's range.
        low, spread = np.nanmin(scale), max(float(np.nanmax(scale) - np.nanmin(scale)), 1e-12)
        return (1.0 - _ORDER_SLIVER) * mapped + _ORDER_SLIVER * (low + combined * spread)

    pred_probs = weighted("pred_probs", identity)
    soft_label = weighted("soft_label", identity)
    if soft_label is None:
        soft_label = pred_probs
    soft_label = soft_label / np.maximum(soft_label.sum(axis=1, keepdims=True), 1e-12)
    label_quality = back_to_scale("label_quality_signal", weighted("label_quality_signal", signal))
    if label_quality is None:  # no source gave one: self-confidence needs given labels, so refuse
        raise ValueError(f"no source among {sources} has label_quality_signal")
    uncertainty = back_to_scale("uncertainty", weighted("uncertainty", signal))
    if uncertainty is None:
        uncertainty = get_entropy(soft_label)
    return CombinedReadout(
        pred_probs=pred_probs,
        soft_label=soft_label,
        uncertainty=uncertainty,
        label_quality=np.clip(label_quality, 0.0, 1.0),
    )


def _percentile_rank(values: np.ndarray) -> np.ndarray:
    """(N,) average-rank percentile in (0, 1) among the finite values (the smallest gets
    0.5 / their count); NaN stays NaN."""
    out = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    if not finite.any():
        return out
    _, inverse, counts = np.unique(values[finite], return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # 1-based rank of the last member of each tie group
    average_rank = (last - counts + 1 + last) / 2.0
    out[finite] = (average_rank[inverse.reshape(-1)] - 0.5) / finite.sum()
    return out
