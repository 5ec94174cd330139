"""Issue types and proposals on crafted soft-label distributions."""

from __future__ import annotations

import numpy as np
import pytest

from fercleaner.scoring import get_issue_type, propose_labels


def _crafted():
    """Class 0/1/2 background (0.8 on the given class) plus four crafted suspects (rows 30..33)."""
    labels = [0, 1, 2] * 10
    soft = [np.eye(3)[k] * 0.7 + 0.1 for k in labels]  # 0.8 on the given class
    uncertainty = [0.3] * 30
    suspects = [
        (0, [0.05, 0.9, 0.05], 0.2),  # given 0, mass on class 1 only -> mislabeled, propose 1
        (0, [0.47, 0.49, 0.04], 0.6),  # given 0, split 0/1, neither confident alone -> ambiguous
        (
            1,
            [0.34, 0.33, 0.33],
            1.0,
        ),  # given 1, top two (0.67) < class 0's threshold (0.71) -> outlier
        (2, [0.04, 0.49, 0.47], 0.6),  # given 2, split 1/2 -> ambiguous
    ]
    for label, dist, unc in suspects:
        labels.append(label)
        soft.append(dist)
        uncertainty.append(unc)
    flags = np.zeros(len(labels), dtype=bool)
    flags[30:] = True
    return np.array(labels), np.array(soft), flags, np.array(uncertainty)


def test_issue_types_on_crafted_distributions():
    labels, soft, flags, uncertainty = _crafted()
    types = get_issue_type(labels, soft, is_label_issue=flags, uncertainty=uncertainty)
    assert list(types[30:]) == ["mislabeled", "ambiguous", "outlier", "ambiguous"]
    assert set(types[:30]) == {"none"}


def test_unconfident_but_certain_sample_is_not_an_outlier():
    labels, soft, flags, uncertainty = _crafted()
    uncertainty[32] = 0.0  # below its class's mean uncertainty
    types = get_issue_type(labels, soft, is_label_issue=flags, uncertainty=uncertainty)
    assert types[32] == "ambiguous"


def test_proposals_follow_issue_types():
    labels, soft, flags, uncertainty = _crafted()
    types = get_issue_type(labels, soft, is_label_issue=flags, uncertainty=uncertainty)
    proposed = propose_labels(labels, soft, issue_type=types)
    np.testing.assert_array_equal(proposed[:30], labels[:30])
    assert list(proposed[30:]) == [1, 1, 0, 1]


def test_mislabeled_needs_the_evidence_on_the_proposed_class():
    # class 0 samples are very confident (threshold 0.9); class 2 samples are not (0.4)
    labels = np.array([0] * 5 + [1] * 5 + [2] * 5 + [1, 1])
    soft = np.array(
        [[0.9, 0.05, 0.05]] * 5
        + [[0.1, 0.8, 0.1]] * 5
        + [[0.3, 0.3, 0.4]] * 5
        + [[0.47, 0.06, 0.47], [0.1, 0.05, 0.85]]
    )
    flags = np.zeros(17, dtype=bool)
    flags[-2:] = True
    types = get_issue_type(labels, soft, is_label_issue=flags, uncertainty=np.zeros(17))
    proposed = propose_labels(labels, soft, issue_type=types)
    # row 15: proposal 0 (first of the tied best others) but only class 2 is confident
    assert (types[15], proposed[15]) == ("ambiguous", 0)
    # row 16: only class 2 reaches its threshold and it is the proposal
    assert (types[16], proposed[16]) == ("mislabeled", 2)


def test_flagged_samples_never_get_their_given_label_proposed():
    labels, soft, flags, uncertainty = _crafted()
    soft[31] = [0.6, 0.35, 0.05]  # given 0 is still the argmax
    types = get_issue_type(labels, soft, is_label_issue=flags, uncertainty=uncertainty)
    proposed = propose_labels(labels, soft, issue_type=types)
    assert (proposed[flags] != labels[flags]).all()
    assert proposed[31] == 1


def test_unknown_issue_type_is_rejected():
    with pytest.raises(ValueError, match="unknown issue types"):
        propose_labels(np.array([0]), np.array([[1.0, 0.0]]), issue_type=np.array(["wrong"]))
