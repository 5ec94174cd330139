"""Downstream helpers: the held-out share, the cleaning policy, accuracy and the recovered gap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fercleaner.bench.downstream import (
    DEFAULT_POLICY,
    find_holdout,
    get_cleaned_labels,
    get_gap_recovered,
    get_holdout_accuracy,
)


def test_holdout_is_stratified_and_seeded():
    truth = pd.DataFrame({"true_label": ["a"] * 40 + ["b"] * 20})
    mask = find_holdout(truth, fraction=0.25, seed=0)
    assert mask[:40].sum() == 10 and mask[40:].sum() == 5
    np.testing.assert_array_equal(mask, find_holdout(truth, fraction=0.25, seed=0))
    assert not np.array_equal(mask, find_holdout(truth, fraction=0.25, seed=1))
    with pytest.raises(ValueError, match="holdout fraction"):
        find_holdout(truth, fraction=1.0, seed=0)


def test_cleaned_labels_follow_the_policy():
    scores = pd.DataFrame(
        {
            "sample_id": ["s0", "s1", "s2", "s3"],
            "given_label": ["anger", "fear", "sadness", "neutral"],
            "proposed_label": ["disgust", "surprise", "neutral", "neutral"],
            "issue_type": ["mislabeled", "ambiguous", "outlier", "none"],
        }
    )
    cleaned = get_cleaned_labels(scores, policy=DEFAULT_POLICY)
    assert cleaned.to_dict() == {"s0": "disgust", "s1": "fear", "s3": "neutral"}
    drop_all = {"mislabeled": "drop", "ambiguous": "drop", "outlier": "drop"}
    assert list(get_cleaned_labels(scores, policy=drop_all).index) == ["s3"]
    with pytest.raises(ValueError, match="policy actions"):
        get_cleaned_labels(scores, policy={"mislabeled": "fix"})


def test_accuracy_on_test_rows_and_gap():
    scores = pd.DataFrame(
        {
            "split": ["train", "test", "test", "test", "test"],
            "given_label": ["a", "a", "b", "b", "a"],
            "predicted_label": ["b", "a", "b", "a", "a"],
        }
    )
    assert get_holdout_accuracy(scores) == 0.75
    assert math.isnan(get_holdout_accuracy(scores[scores["split"] == "train"]))
    assert get_gap_recovered(0.6, 0.7, 0.8) == pytest.approx(0.5)
    assert math.isnan(get_gap_recovered(0.8, 0.7, 0.8))
