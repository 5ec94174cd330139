"""Combining methods and training dynamics into one label_quality, soft_label and uncertainty."""

from __future__ import annotations

import numpy as np
import pytest
from _scoring_data import make_data
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

from fercleaner.scoring import combine_sources


def _readout(probs, labels, *, uncertainty=None):
    rows = np.arange(len(labels))
    return {
        "pred_probs": probs,
        "soft_label": probs,
        "uncertainty": uncertainty if uncertainty is not None else 1 - probs.max(axis=1),
        "label_quality_signal": probs[rows, labels],
    }


def test_single_source_passes_raw_signals_through():
    data = make_data(n=50, num_classes=3, seed=0)
    readout = _readout(data["pred_probs"], data["given"])
    for rule in ("rank_mean", "mean", "primary"):
        combined = combine_sources({"baseline": readout}, primary="baseline", rule=rule)
        np.testing.assert_allclose(combined.label_quality, readout["label_quality_signal"])
        np.testing.assert_allclose(combined.soft_label, data["pred_probs"])


def test_rank_mean_averages_percentile_ranks():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    labels = np.zeros(4, dtype=int)
    a = _readout(probs, labels)
    b = {"label_quality_signal": np.array([0.1, 0.2, 0.3, 0.4]), "uncertainty": np.zeros(4)}
    combined = combine_sources({"m": a, "dynamics": b}, primary="m")
    # ranks of a: [4, 3, 1, 2], of b: [1, 2, 3, 4]; mean of (rank - 0.5) / 4 = (ra + rb - 1) / 8
    mean_rank = np.array([0.5, 0.5, 0.375, 0.625])
    # mapped back onto the primary's values [0.2, 0.5, 0.6, 0.9] at position (r * 4 - 0.5) / 3
    expected = np.quantile(probs[:, 0], (mean_rank * 4 - 0.5) / 3)
    np.testing.assert_allclose(combined.label_quality, expected, atol=1e-6)
    assert np.argsort(combined.label_quality, kind="stable").tolist() == [2, 0, 1, 3]
    np.testing.assert_allclose(combined.pred_probs, probs)  # only the primary has probabilities
    weighted = combine_sources({"m": a, "dynamics": b}, primary="m", weights={"dynamics": 0})
    np.testing.assert_allclose(weighted.label_quality, probs[:, 0])


def test_rank_mean_keeps_its_order_where_the_primary_saturates():
    # the primary is sure of half the labels (a saturated probability, tied at 1.0); the
    # second source still orders them, and label_quality must keep that order
    primary = np.array([1.0, 1.0, 1.0, 1.0, 0.2, 0.4, 0.6, 0.8])
    probs = np.stack([primary, 1 - primary], axis=1)
    late = {"label_quality_signal": np.array([0.9, 0.7, 0.5, 0.3, 0.1, 0.2, 0.4, 0.6])}
    combined = combine_sources(
        {"m": _readout(probs, np.zeros(8, int)), "dynamics": late}, primary="m"
    )
    quality = combined.label_quality
    rank_sum = rankdata(primary) + rankdata(late["label_quality_signal"])  # all distinct
    assert len(set(quality.tolist())) == 8  # no two samples collapsed onto one value
    assert np.argsort(quality).tolist() == np.argsort(rank_sum).tolist()
    assert quality[:4].tolist() == sorted(quality[:4].tolist(), reverse=True)  # as the late source
    assert quality.min() >= 0.2 and quality.max() <= 1.0  # within the primary's range


def test_mean_rule_and_soft_label_average():
    probs_a = np.array([[0.8, 0.2], [0.4, 0.6]])
    probs_b = np.array([[0.6, 0.4], [0.2, 0.8]])
    labels = np.array([0, 0])
    combined = combine_sources(
        {"a": _readout(probs_a, labels), "b": _readout(probs_b, labels)}, primary="a", rule="mean"
    )
    np.testing.assert_allclose(combined.label_quality, [0.7, 0.3])
    np.testing.assert_allclose(combined.soft_label, [[0.7, 0.3], [0.3, 0.7]])
    primary_only = combine_sources(
        {"a": _readout(probs_a, labels), "b": _readout(probs_b, labels)},
        primary="a",
        rule="primary",
    )
    np.testing.assert_allclose(primary_only.label_quality, [0.8, 0.4])


def test_combining_two_noisy_views_ranks_better_than_either():
    data = make_data(n=1000, num_classes=4, flip_rate=0.2, seed=7)
    rng = np.random.default_rng(0)
    truth_quality = np.where(data["is_noisy"], 0.3, 0.7)
    views = [np.clip(truth_quality + rng.normal(0, 0.35, 1000), 0, 1) for _ in range(2)]
    readouts = {
        "m": {**_readout(data["pred_probs"], data["given"]), "label_quality_signal": views[0]},
        "dynamics": {"label_quality_signal": views[1]},
    }
    combined = combine_sources(readouts, primary="m")
    ap = [average_precision_score(data["is_noisy"], 1 - v) for v in views]
    ap_combined = average_precision_score(data["is_noisy"], 1 - combined.label_quality)
    assert ap_combined > max(ap)


def test_bad_options_name_the_problem():
    probs = np.array([[0.5, 0.5]])
    readouts = {"m": _readout(probs, np.array([0]))}
    with pytest.raises(ValueError, match="unknown combination rule 'vote'"):
        combine_sources(readouts, primary="m", rule="vote")
    with pytest.raises(ValueError, match="primary source 'x'"):
        combine_sources(readouts, primary="x")
    with pytest.raises(ValueError, match="unknown sources \\['z'\\]"):
        combine_sources(readouts, primary="m", weights={"z": 1.0})
    with pytest.raises(ValueError, match="has 2 rows"):
        combine_sources({**readouts, "d": {"label_quality_signal": np.ones(2)}}, primary="m")
