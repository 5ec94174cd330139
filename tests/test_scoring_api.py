"""`score_labels`: cleanlab's arguments in, fercleaner's scores contract out."""

from __future__ import annotations

import numpy as np
import pytest

from fercleaner.scoring import score_labels
from fercleaner.scoring.api import get_outlier_score


def _noisy(n: int = 600, k: int = 5, flips: int = 90, seed: int = 1):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    flipped = rng.choice(n, flips, replace=False)
    given[flipped] = (truth[flipped] + 1 + rng.integers(0, k - 1, flips)) % k
    return given, probs, truth, flipped


def test_flags_equal_cleanlabs_find_label_issues_on_the_same_arguments():
    from cleanlab.filter import find_label_issues

    given, probs, _, _ = _noisy()
    scores = score_labels(given, probs)
    np.testing.assert_array_equal(scores["is_label_issue"], find_label_issues(given, probs))
    np.testing.assert_allclose(scores["label_quality"], probs[np.arange(len(given)), given])


def test_contract_columns_names_ids_and_planted_errors():
    given, probs, truth, flipped = _noisy(k=3)
    names = ["neutral", "happiness", "anger"]
    ids = [f"img/{i}.png" for i in range(len(given))]
    scores = score_labels(given, probs, class_names=names, sample_ids=ids)
    assert list(scores.columns) == [
        "sample_id",
        "given_label",
        "predicted_label",
        "proposed_label",
        "label_quality",
        "is_label_issue",
        "issue_type",
        "uncertainty",
        "pred_probs",
        "soft_label",
    ]
    assert scores["sample_id"].tolist() == ids
    assert scores["given_label"].tolist() == [names[g] for g in given]
    caught = scores["is_label_issue"].to_numpy()[flipped]
    assert caught.mean() > 0.5
    # a caught flip's proposal is mostly its true class
    proposals = scores["proposed_label"].to_numpy()[flipped][caught]
    assert (proposals == np.array(names)[truth[flipped][caught]]).mean() > 0.7
    assert set(scores["issue_type"]) <= {"mislabeled", "ambiguous", "outlier", "none"}


@pytest.mark.parametrize(
    ("labels", "probs", "message"),
    [
        ([0, 1], [[0.5, 0.5]], "one entry per row"),
        ([0, 3], [[0.5, 0.5], [0.5, 0.5]], "label index 3 is outside 0..1"),
        ([0, 1], [[0.5, 0.5], [2.0, 1.0]], "must lie in"),
        ([0, 1], [[0.5, 0.5], [0.3, 0.3]], "row 1 sums to 0.6, not 1"),
        ([0, 1], [[0.5, np.nan], [0.5, 0.5]], "NaN"),
    ],
)
def test_bad_arguments_say_what_is_wrong(labels, probs, message):
    with pytest.raises(ValueError, match=message):
        score_labels(np.array(labels), np.array(probs))
    with pytest.raises(ValueError, match="class_names must be 2 distinct"):
        score_labels(np.array([0, 1]), np.eye(2), class_names=["a", "a"])


def test_outlier_score_ranks_the_isolated_sample_highest():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 3))
    features[7] += 40.0
    score = get_outlier_score(features)
    assert score.argmax() == 7 and score.max() == 1.0 and score.min() == 0.0
    given, probs, _, _ = _noisy(n=50, k=3, flips=5)
    with_outliers = score_labels(given, probs, embeddings=features)
    assert with_outliers["outlier_score"].idxmax() == 7
    with pytest.raises(ValueError, match="embeddings must have 50 rows, one per label; got 49"):
        score_labels(given, probs, embeddings=features[:49])
