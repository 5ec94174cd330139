"""Benchmark metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fercleaner.bench import (
    get_correction_accuracy,
    get_detection_metrics,
    get_reliability_curve,
    get_soft_label_metrics,
    get_vote_entropy,
)


def test_detection_metrics_by_hand():
    is_noisy = np.array([1, 1, 0, 0, 0], dtype=bool)
    quality = np.array([0.1, 0.6, 0.2, 0.8, 0.9])
    flags = np.array([1, 0, 1, 0, 0], dtype=bool)
    m = get_detection_metrics(is_noisy, quality, flags)
    # ranking by 1 - quality: noisy, clean, noisy, clean, clean -> AP = (1/1 + 2/3) / 2
    assert m["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["auroc"] == pytest.approx(5 / 6)
    assert (m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5)
    assert m["flagged"] == 2 and m["true_errors"] == 2


def test_perfect_and_degenerate_detection():
    is_noisy = np.array([1, 0, 0], dtype=bool)
    perfect = get_detection_metrics(is_noisy, np.array([0.0, 1.0, 1.0]), is_noisy)
    assert perfect["ap"] == 1.0 and perfect["auroc"] == 1.0 and perfect["f1"] == 1.0
    none = get_detection_metrics(np.zeros(3, bool), np.ones(3), np.zeros(3, bool))
    assert math.isnan(none["ap"]) and none["f1"] == 0.0


def test_correction_accuracy_counts_flagged_true_errors_only():
    true = np.array(["a", "b", "c", "d"], dtype=object)
    proposed = np.array(["a", "x", "c", "d"], dtype=object)
    noisy = np.array([1, 1, 0, 1], dtype=bool)
    flags = np.array([1, 1, 1, 0], dtype=bool)
    assert get_correction_accuracy(true, proposed, is_noisy=noisy, is_label_issue=flags) == 0.5
    nothing = np.zeros(4, dtype=bool)
    assert math.isnan(
        get_correction_accuracy(true, proposed, is_noisy=noisy, is_label_issue=nothing)
    )


def test_soft_label_metrics():
    votes = np.array([[10, 0], [5, 5], [8, 2]])
    entropy = get_vote_entropy(votes)
    assert entropy[0] == 0 and entropy[1] == pytest.approx(np.log(2))
    exact = votes / 10
    m = get_soft_label_metrics(votes, exact, uncertainty=entropy)
    assert m["kl_votes_soft"] == pytest.approx(0.0, abs=1e-4)
    assert m["spearman_uncertainty_vote_entropy"] == pytest.approx(1.0)
    flat = get_soft_label_metrics(votes, np.full((3, 2), 0.5), uncertainty=-entropy)
    assert flat["kl_votes_soft"] > 0.2
    assert flat["spearman_uncertainty_vote_entropy"] == pytest.approx(-1.0)


def test_reliability_curve_bins():
    quality = np.array([0.05, 0.15, 0.95, 0.97])
    noisy = np.array([1, 0, 0, 0], dtype=bool)
    curve = get_reliability_curve(quality, noisy, bins=10)
    assert curve["count"] == [1, 1, 2]
    assert curve["fraction_correct"] == [0.0, 1.0, 1.0]
    assert curve["mean_quality"][2] == pytest.approx(0.96)
