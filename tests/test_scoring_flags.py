"""Planted label flips are found; label quality formulas; the per-pair and per-class count rules."""

from __future__ import annotations

import numpy as np
import pytest
from _scoring_data import make_data
from sklearn.metrics import average_precision_score

from fercleaner.scoring import (
    FLAG_RULES,
    estimate_confident_joint,
    estimate_issue_counts,
    find_label_issues,
    get_label_quality,
)


@pytest.mark.parametrize("rule", FLAG_RULES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_flips_are_found(seed, rule):
    data = make_data(n=800, num_classes=4, flip_rate=0.2, seed=seed)
    mask = find_label_issues(data["given"], data["pred_probs"], rule=rule)
    noisy = data["is_noisy"]
    precision = (mask & noisy).sum() / mask.sum()
    recall = (mask & noisy).sum() / noisy.sum()
    assert precision > 0.8 and recall > 0.8, (precision, recall)


def test_noise_rate_flags_the_largest_margins_of_each_given_true_pair():
    data = make_data(n=500, num_classes=3, flip_rate=0.3, seed=4)
    given, probs = data["given"], data["pred_probs"]
    mask = find_label_issues(given, probs, rule="noise_rate")
    counts = np.rint(estimate_confident_joint(given, probs)).astype(int)
    expected = np.zeros(len(given), dtype=bool)
    for i in range(3):
        members = np.flatnonzero(given == i)
        for j in set(range(3)) - {i}:
            margin = probs[members, j] - probs[members, i]
            expected[members[np.argsort(-margin, kind="stable")[: counts[i, j]]]] = True
    disagrees = probs.argmax(axis=1) != given
    np.testing.assert_array_equal(mask, expected & disagrees)
    assert mask.sum() <= counts.sum() - np.trace(counts)


def test_class_rule_flags_the_lowest_ranked_per_class_the_model_disagrees_with():
    data = make_data(n=500, num_classes=3, flip_rate=0.3, seed=4)
    given, probs = data["given"], data["pred_probs"]
    mask = find_label_issues(given, probs, rule="class")
    counts = estimate_issue_counts(given, probs)
    disagrees = probs.argmax(axis=1) != given
    quality = probs[np.arange(len(given)), given]
    for k in range(3):
        members = np.flatnonzero(given == k)
        lowest = members[np.argsort(quality[members], kind="stable")[: counts[k]]]
        expected = np.zeros(len(given), dtype=bool)
        expected[lowest] = True
        np.testing.assert_array_equal(mask[members], (expected & disagrees)[members])
    assert not (mask & ~disagrees).any()
    assert mask.sum() <= counts.sum()


def test_class_rule_ranking_signal_chooses_which_samples_are_flagged():
    data = make_data(n=300, num_classes=3, flip_rate=0.2, seed=5)
    # a ranking that knows the truth puts the noisy samples first: only they are flagged
    oracle = np.where(data["is_noisy"], 0.0, 1.0)
    mask = find_label_issues(data["given"], data["pred_probs"], rule="class", label_quality=oracle)
    assert mask.any() and not (mask & ~data["is_noisy"]).any()
    # the same counts with the opposite ranking pick (far fewer) other samples
    anti = find_label_issues(
        data["given"], data["pred_probs"], rule="class", label_quality=1 - oracle
    )
    assert (anti & data["is_noisy"]).sum() < (mask & data["is_noisy"]).sum() / 2


def test_clean_confident_data_flags_nothing():
    labels = np.array([0, 1, 2] * 10)
    probs = np.full((30, 3), 0.05)
    probs[np.arange(30), labels] = 0.9
    assert not find_label_issues(labels, probs).any()


def test_label_quality_formulas():
    labels = np.array([0, 1])
    probs = np.array([[0.6, 0.3, 0.1], [0.7, 0.2, 0.1]])
    np.testing.assert_allclose(get_label_quality(labels, probs), [0.6, 0.2])
    np.testing.assert_allclose(
        get_label_quality(labels, probs, method="normalized_margin"), [0.65, 0.25]
    )
    with pytest.raises(ValueError, match="unknown label quality method 'loss'"):
        get_label_quality(labels, probs, method="loss")


def test_self_confidence_ranks_planted_flips_first():
    data = make_data(n=600, num_classes=5, flip_rate=0.2, seed=3)
    quality = get_label_quality(data["given"], data["pred_probs"])
    assert average_precision_score(data["is_noisy"], 1 - quality) > 0.9
    assert quality.min() >= 0 and quality.max() <= 1


def test_label_quality_length_is_checked():
    data = make_data(n=40, num_classes=2, seed=0)
    with pytest.raises(ValueError, match=r"label_quality must have shape \(40,\)"):
        find_label_issues(data["given"], data["pred_probs"], label_quality=np.ones(3))


def test_unknown_flag_rule_is_named():
    data = make_data(n=40, num_classes=2, seed=0)
    with pytest.raises(
        ValueError, match="unknown flag rule 'margin'; choose from argmax, noise_rate, class"
    ):
        find_label_issues(data["given"], data["pred_probs"], rule="margin")


def test_argmax_flags_every_sample_the_model_gives_another_class_and_counts_nothing():
    probs = np.array([[0.6, 0.4], [0.45, 0.55], [0.2, 0.8], [0.9, 0.1]])
    labels = np.array([0, 0, 1, 1])
    mask = find_label_issues(labels, probs, rule="argmax")
    assert mask.tolist() == [False, True, False, True]


def test_in_sample_probabilities_make_the_confident_joint_undercount():
    """Inflating the given class (as a model scoring its own training data does) hides errors
    from `noise_rate` but not from `argmax`, which only asks whether another class wins."""
    data = make_data(n=800, num_classes=4, flip_rate=0.2, seed=5)
    given, probs = data["given"], data["pred_probs"].copy()
    rows = np.arange(len(given))
    probs[rows, given] += 0.6 * (1 - probs[rows, given])  # memorised: pulled toward the label
    probs /= probs.sum(axis=1, keepdims=True)
    argmax = find_label_issues(given, probs, rule="argmax")
    noise_rate = find_label_issues(given, probs, rule="noise_rate")
    noisy = data["is_noisy"]
    assert (argmax & noisy).sum() > (noise_rate & noisy).sum()
    assert noise_rate.sum() < 0.8 * noisy.sum() <= argmax.sum()
