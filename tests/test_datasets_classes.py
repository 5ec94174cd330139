"""Each dataset's class-code table maps to the canonical class it names, and spellings normalise."""

from __future__ import annotations

import pytest

from fercleaner.classes import (
    AFFECTNET_CODES,
    AFFECTNET_EXCLUDED_CODES,
    CANONICAL_CLASSES,
    FER2013_CODES,
    FERPLUS_VOTE_COLUMNS,
    RAFDB_CODES,
    dataset_classes,
    normalize_label,
)
from fercleaner.errors import UnknownLabelError


def test_fer2013_codes_follow_the_kaggle_order():
    expected = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
    assert [FER2013_CODES[c] for c in range(7)] == expected


def test_rafdb_codes_are_one_based_surprise_first():
    expected = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]
    assert [RAFDB_CODES[c] for c in range(1, 8)] == expected
    assert 0 not in RAFDB_CODES


def test_affectnet_codes_and_exclusions():
    expected = [
        "neutral",
        "happiness",
        "sadness",
        "surprise",
        "fear",
        "disgust",
        "anger",
        "contempt",
    ]
    assert [AFFECTNET_CODES[c] for c in range(8)] == expected
    assert sorted(AFFECTNET_EXCLUDED_CODES) == [8, 9, 10]
    assert not set(AFFECTNET_CODES) & set(AFFECTNET_EXCLUDED_CODES)


def test_ferplus_vote_columns_start_with_the_canonical_order():
    assert FERPLUS_VOTE_COLUMNS[:8] == CANONICAL_CLASSES
    assert FERPLUS_VOTE_COLUMNS[8:] == ("unknown", "NF")


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("Angry", "anger"),
        ("anger", "anger"),
        ("HAPPY", "happiness"),
        ("happiness", "happiness"),
        ("sad", "sadness"),
        ("Surprised", "surprise"),
        ("fearful", "fear"),
        ("disgusted", "disgust"),
        (" Neutral ", "neutral"),
        ("contempt", "contempt"),
    ],
)
def test_label_spellings_normalise(spelling, canonical):
    assert normalize_label(spelling) == canonical


def test_unknown_spelling_names_the_closest_class():
    with pytest.raises(UnknownLabelError, match="Did you mean 'happiness'"):
        normalize_label("hapy")
    with pytest.raises(UnknownLabelError, match="unknown expression label 'xyz'"):
        normalize_label("xyz")


def test_dataset_classes_keep_canonical_order():
    assert dataset_classes(["fear", "neutral", "anger", "fear"]) == ["neutral", "anger", "fear"]
