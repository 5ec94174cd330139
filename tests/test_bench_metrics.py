"""Benchmark metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fercleaner.bench import (
    get_consensus_metrics,
    get_correction_accuracy,
    get_detection_metrics,
    get_issue_type_metrics,
    get_reliability_curve,
    get_soft_label_metrics,
    get_soft_label_reliability,
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


def test_soft_label_reliability_pairs_every_class_probability_with_its_vote_share():
    votes = np.array([[10, 0], [5, 5], [0, 0]])  # the third image has no vote: skipped
    exact = get_soft_label_reliability(votes, np.array([[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]]))
    assert exact["count"] == [1, 2, 1]  # bins of 0.0, 0.5 (twice), 1.0
    assert exact["mean_soft"] == exact["vote_share"] == [0.0, 0.5, 1.0]
    assert exact["ece"] == pytest.approx(0.0)
    # overconfident: 0.9 where the crowd splits 50/50, 0.1 for the other half of the votes
    sharp = get_soft_label_reliability(votes[:2], np.array([[1.0, 0.0], [0.9, 0.1]]))
    # bins: 0.0 | 0.1 | 0.9 and 1.0 together (share 0.5 and 1.0)
    assert sharp["mean_soft"] == pytest.approx([0.0, 0.1, 0.95])
    assert sharp["vote_share"] == pytest.approx([0.0, 0.5, 0.75])
    assert sharp["count"] == [1, 1, 2]
    assert sharp["ece"] == pytest.approx((0.0 + 0.4 + 2 * 0.2) / 4)
    # top class: 1.0 with all the votes (gap 0) and 0.9 with half of them (gap 0.4), one bin
    assert sharp["top_ece"] == pytest.approx(abs(0.95 - 0.75))
    assert exact["top_ece"] == pytest.approx(0.0)


def test_consensus_metrics_by_hand():
    true = np.array(["a", "a", "b", "b", "c"], dtype=object)
    given = np.array(["a", "b", "b", "a", "c"], dtype=object)  # rows 1 and 3 wrong
    consensus = np.array(["a", "b", "b", "b", "a"], dtype=object)  # fixes 3, breaks 4
    quality = np.array([0.9, 0.2, 0.8, 0.5, 0.6])
    m = get_consensus_metrics(true, given, consensus, quality)
    assert m["consensus_accuracy"] == pytest.approx(3 / 5)
    # ranking by 1 - quality: wrong(0.2), wrong(0.5), right, right, right -> AP 1
    assert m["label_quality_ap"] == pytest.approx(1.0) and m["label_quality_auroc"] == 1.0
    assert m["changed"] == 2 and m["samples"] == 5
    flipped = get_consensus_metrics(true, given, consensus, np.array([0.1, 0.9, 0.2, 0.8, 0.3]))
    assert flipped["label_quality_ap"] == pytest.approx((1 / 4 + 2 / 5) / 2)
    clean = get_consensus_metrics(true, true, true, quality)
    assert clean["consensus_accuracy"] == 1.0 and math.isnan(clean["label_quality_ap"])
    with pytest.raises(ValueError, match="lengths differ"):
        get_consensus_metrics(true, given[:4], consensus, quality)


def test_issue_type_metrics_by_hand():
    votes = np.array(
        [
            [10, 0, 0],  # unanimous a (entropy 0)
            [9, 1, 0],  # majority a, low entropy
            [2, 8, 0],  # majority b: given a is mislabeled, entropy 0.50 (above the median)
            [5, 5, 0],  # no strict majority: ambiguous
            [6, 2, 2],  # majority a, high entropy: ambiguous
            [0, 10, 0],  # unanimous b: given a is mislabeled
        ]
    )
    given = np.array([0, 0, 0, 0, 0, 0])
    flags = np.array([False, True, True, True, True, True])
    types = np.array(["none", "mislabeled", "mislabeled", "ambiguous", "ambiguous", "outlier"])
    m = get_issue_type_metrics(votes, given, flags, types)
    # entropies: 0, 0.325, 0.500, 0.693, 0.950, 0 -> median 0.41: rows 2, 3, 4 above it
    assert m["median_vote_entropy"] == pytest.approx((0.3251 + 0.5004) / 2, abs=1e-3)
    assert m["flagged"] == 5
    # people: ambiguous = rows 2, 3, 4; mislabeled = rows 2, 5
    assert m["ambiguous"]["count"] == 2 and m["ambiguous"]["precision"] == 1.0
    assert m["ambiguous"]["base_rate"] == pytest.approx(3 / 5)
    assert m["ambiguous"]["lift"] == pytest.approx(5 / 3)
    assert m["mislabeled"]["count"] == 2 and m["mislabeled"]["precision"] == 0.5
    assert m["mislabeled"]["base_rate"] == pytest.approx(2 / 5)
    assert m["mislabeled"]["lift"] == pytest.approx(1.25)
    # a perfect precision would give lift 1 / base rate: the most any rule can reach
    assert m["ambiguous"]["max_lift"] == pytest.approx(5 / 3)
    assert m["mislabeled"]["max_lift"] == pytest.approx(5 / 2)
    assert m["confusion"] == {
        "ambiguous": {"people_ambiguous": 2, "people_mislabeled": 0, "neither": 0},
        "mislabeled": {"people_ambiguous": 1, "people_mislabeled": 1, "neither": 1},
    }
    # votes for no class (FERPlus unknown / NF) count towards the total: 9 of 20 is no majority
    with_unknown = get_issue_type_metrics(
        votes, given, flags, types, vote_totals=votes.sum(axis=1) + [0, 10, 0, 0, 0, 0]
    )
    assert with_unknown["confusion"]["mislabeled"]["people_ambiguous"] == 2
    assert with_unknown["confusion"]["mislabeled"]["neither"] == 0
    assert with_unknown["mislabeled"]["precision"] == 0.5
    nothing = get_issue_type_metrics(votes, given, np.zeros(6, bool), np.full(6, "none"))
    assert nothing["ambiguous"]["count"] == 0 and math.isnan(nothing["ambiguous"]["precision"])
    assert math.isnan(nothing["ambiguous"]["max_lift"])
    with pytest.raises(ValueError, match="votes must be"):
        get_issue_type_metrics(votes, given[:5], flags, types)
