"""Per-class thresholds, the confident joint and noise-rate estimates on hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest
from _scoring_data import make_data

from fercleaner.scoring import (
    estimate_confident_joint,
    estimate_issue_counts,
    estimate_noise_rates,
    estimate_per_class_thresholds,
)


def test_thresholds_are_mean_self_confidence_per_given_class():
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    thresholds = estimate_per_class_thresholds(labels, probs)
    np.testing.assert_allclose(thresholds, [0.7, 0.6])


def test_class_nobody_was_given_gets_an_unreachable_threshold():
    labels = np.array([0, 0])
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.1, 0.7]])
    thresholds = estimate_per_class_thresholds(labels, probs)
    assert thresholds[0] == pytest.approx(0.55)
    assert np.isinf(thresholds[1]) and np.isinf(thresholds[2])


def test_confident_joint_counts_the_planted_cells():
    # 3 classes; class 0 has 2 samples confidently in class 1, class 2 has 1 confidently in 0
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    probs = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.9, 0.05, 0.05],
            [0.9, 0.05, 0.05],
            [0.05, 0.9, 0.05],
            [0.05, 0.9, 0.05],
            [0.05, 0.9, 0.05],
            [0.05, 0.9, 0.05],
            [0.05, 0.9, 0.05],
            [0.05, 0.05, 0.9],
            [0.05, 0.05, 0.9],
            [0.9, 0.05, 0.05],
        ]
    )
    joint = estimate_confident_joint(labels, probs, calibrate=False)
    expected = np.array([[3, 2, 0], [0, 3, 0], [1, 0, 2]])
    np.testing.assert_array_equal(joint, expected)
    calibrated = estimate_confident_joint(labels, probs)
    np.testing.assert_allclose(calibrated.sum(axis=1), [5, 3, 3])
    np.testing.assert_array_equal(estimate_issue_counts(labels, probs), [2, 0, 1])
    np.testing.assert_allclose(estimate_noise_rates(labels, probs), [0.4, 0.0, 1 / 3])


def test_several_confident_classes_count_for_the_most_probable_class_overall():
    """Low thresholds (rare classes) must not claim a sample whose top class just missed its own."""
    thresholds = np.array([0.7, 0.3, 0.1])
    labels = np.array([2, 2, 2])
    probs = np.array(
        [
            [0.50, 0.32, 0.18],  # classes 1 and 2 reach their thresholds: counts for class 0
            [0.50, 0.45, 0.05],  # only class 1 reaches its threshold: counts for class 1
            [0.60, 0.35, 0.05],  # only class 1 again
        ]
    )
    raw = estimate_confident_joint(labels, probs, thresholds=thresholds, calibrate=False)
    np.testing.assert_array_equal(raw[2], [1, 2, 0])


def test_calibration_spreads_unconfident_samples_over_the_row():
    labels = np.array([0, 0, 0, 0])
    # thresholds: class 0 -> mean(0.8, 0.8, 0.1, 0.5) = 0.55; class 1 never given -> inf
    probs = np.array([[0.8, 0.2], [0.8, 0.2], [0.1, 0.9], [0.5, 0.5]])
    raw = estimate_confident_joint(labels, probs, calibrate=False)
    np.testing.assert_array_equal(raw, [[2, 0], [0, 0]])
    np.testing.assert_allclose(estimate_confident_joint(labels, probs), [[4, 0], [0, 0]])


def test_noise_rate_estimate_tracks_the_planted_rate():
    data = make_data(n=2000, num_classes=5, flip_rate=0.25, seed=1)
    rates = estimate_noise_rates(data["given"], data["pred_probs"])
    planted = np.array([data["is_noisy"][data["given"] == k].mean() for k in range(5)])
    assert np.abs(rates - planted).max() < 0.08


def test_bad_inputs_are_rejected_with_the_value():
    with pytest.raises(ValueError, match="label index 3"):
        estimate_per_class_thresholds(np.array([0, 3]), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="shape"):
        estimate_per_class_thresholds(np.array([0, 1, 1]), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        estimate_per_class_thresholds(np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]]))
