"""Crowd votes in the scores on hand-made arrays: the consensus flag rule, 0 / 1 / many votes.

Eight images over three classes, scored by `assemble_scores` exactly as `fercleaner score`
does, then `apply_crowd_votes`: image A is given `neutral` but five voters say
`happiness` (the consensus flags it), B has one dissenting vote against a confident model
(no flag), C and H have no votes (the model alone: only their label quality moves, onto
the consensus's calibrated scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fercleaner.arrays import get_probability_readout, to_matrix
from fercleaner.errors import ScoresFormatError
from fercleaner.scoring import ScoreColumns, assemble_scores, read_scores, write_scores
from fercleaner.scoring.consensus import get_consensus
from fercleaner.scoring.crowd import (
    CROWD_COLUMNS,
    apply_crowd_votes,
    find_consensus_issues,
    get_sample_votes,
)

CLASSES = ["neutral", "happiness", "anger"]
GIVEN = ["neutral", "neutral", "neutral", "neutral", "happiness", "anger", "happiness", "neutral"]
PROBS = np.array(
    [
        [0.6, 0.3, 0.1],  # A: 5 votes happiness
        [0.9, 0.05, 0.05],  # B: 1 vote happiness
        [0.8, 0.1, 0.1],  # C: no votes
        [0.7, 0.2, 0.1],  # D: 4 neutral, 1 happiness
        [0.1, 0.8, 0.1],  # E: 3 happiness, 2 neutral
        [0.1, 0.1, 0.8],  # F: 4 anger, 1 neutral
        [0.2, 0.7, 0.1],  # G: 3 happiness, 1 neutral, 1 anger
        [0.7, 0.2, 0.1],  # H: no votes
    ]
)
VOTES = np.array(
    [[0, 5, 0], [0, 1, 0], [0, 0, 0], [4, 1, 0], [2, 3, 0], [1, 0, 4], [1, 3, 1], [0, 0, 0]],
    dtype=float,
)
A, B, C, D, H = 0, 1, 2, 3, 7


def _scores() -> pd.DataFrame:
    samples = pd.DataFrame(
        {
            "sample_id": [f"s{i}.png" for i in range(len(GIVEN))],
            "split": "train",
            "given_label": GIVEN,
            "path": [f"/data/s{i}.png" for i in range(len(GIVEN))],
        }
    )
    labels = np.array([CLASSES.index(g) for g in GIVEN])
    readout = get_probability_readout(PROBS, labels)
    return assemble_scores(
        samples, CLASSES, {"predictions": readout}, method_name="predictions", flag_rule="argmax"
    )


def soft_after_row(scores: pd.DataFrame, row: int) -> np.ndarray:
    return np.asarray(scores["soft_label"].iloc[row], dtype=np.float64)


def test_the_consensus_flag_needs_votes_a_disagreement_and_a_confident_consensus() -> None:
    labels = np.array([0, 0, 0, 0, 0])
    consensus = np.array([1, 1, 1, 0, 1])
    quality = np.array([0.5, 0.49, 0.9, 0.99, 0.9])
    votes = np.array([3.0, 3.0, 0.0, 3.0, 1.0])
    got = find_consensus_issues(labels, consensus, quality, votes)
    # at the bar / under it / no votes (the model alone) / agrees / one vote is enough
    assert got.tolist() == [True, False, False, False, True]
    assert (
        find_consensus_issues(labels, consensus, quality, votes, min_quality=0.95).tolist()
        == [False] * 5
    )
    with pytest.raises(ValueError, match="one shape"):
        find_consensus_issues(labels, consensus[:2], quality, votes)


def test_votes_change_the_soft_label_flags_and_proposals_of_voted_images_only() -> None:
    before = _scores()
    assert not before["is_label_issue"].iloc[A]  # the model alone does not flag A
    crowd = apply_crowd_votes(before, VOTES, CLASSES)
    after = crowd.scores
    assert list(after.columns) == [*before.columns[:-1], *CROWD_COLUMNS, "path"]
    # A: the crowd outvotes the model: flagged mislabeled, proposes happiness, given stays
    assert after["consensus_label"].iloc[A] == "happiness"
    assert after["consensus_quality"].iloc[A] >= 0.5
    assert after["is_label_issue"].iloc[A] and after["issue_type"].iloc[A] == "mislabeled"
    assert after["proposed_label"].iloc[A] == "happiness"
    assert after["given_label"].iloc[A] == "neutral"
    # the ranking follows the consensus: A (outvoted) now ranks below D (4 of 5 agree)
    assert before["label_quality"].iloc[A] < before["label_quality"].iloc[D]
    consensus = get_consensus(VOTES, to_matrix(before["pred_probs"], dtype=np.float64))
    np.testing.assert_allclose(
        after["label_quality"].iloc[A], consensus.soft_label[A, 0], rtol=1e-5
    )
    # the soft label estimates how people vote: the votes plus the model's worth in votes
    np.testing.assert_allclose(
        soft_after_row(after, A), consensus.vote_distribution[A], rtol=1e-5, atol=1e-6
    )
    assert after["label_quality"].iloc[A] < 0.5 < after["label_quality"].iloc[D]
    # B: one dissenting vote against a confident model: the consensus stays neutral
    assert after["consensus_label"].iloc[B] == "neutral" and not after["is_label_issue"].iloc[B]
    soft_before, soft_after = to_matrix(before["soft_label"]), to_matrix(after["soft_label"])
    assert soft_after[B, 1] > soft_before[B, 1]  # but the vote moved the soft label
    # C, H: no votes: the model alone speaks; only their label quality moves, to the
    # calibrated model's belief in the given label (the scale the voted images are on)
    for row in (C, H):
        assert after["votes"].iloc[row] is None and after["vote_count"].iloc[row] == 0
        np.testing.assert_array_equal(soft_after[row], soft_before[row])
        for column in ("is_label_issue", "issue_type", "proposed_label"):
            assert after[column].iloc[row] == before[column].iloc[row]
        np.testing.assert_allclose(
            after["label_quality"].iloc[row], consensus.soft_label[row, 0], rtol=1e-5
        )
    assert after["label_quality"].iloc[C] > after["label_quality"].iloc[H]  # order kept
    np.testing.assert_allclose(soft_after.sum(axis=1), 1.0, atol=1e-5)
    summary = crowd.summary
    assert summary["images_with_votes"] == 6
    assert summary["images_with_one_vote"] == 1  # B
    assert summary["images_without_votes"] == 2  # C, H
    assert summary["flags_from_consensus"] == 1  # A
    assert 1 / 3 < summary["annotator_accuracy"] < 1 and summary["temperature"] > 0


def test_without_votes_the_scores_are_returned_untouched() -> None:
    scores = _scores()
    crowd = apply_crowd_votes(scores, None, CLASSES)
    assert crowd.scores is scores and crowd.summary is None


def test_sample_votes_come_from_counts_or_a_normalised_distribution() -> None:
    samples = pd.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d"],
            "votes": [np.array([1, 2, 0]), None, np.array([0, 0, 0]), None],
            "label_distribution": [
                np.array([0.2, 0.2, 0.6]),  # counts win where both exist
                np.array([0.5, 0.25, 0.2499]),  # rounded: normalised to one annotation
                None,
                np.nan,
            ],
        }
    )
    votes = get_sample_votes(samples, CLASSES)
    np.testing.assert_allclose(votes[0], [1, 2, 0])
    assert votes[1].sum() == pytest.approx(1.0) and votes[1][0] > votes[1][1]
    # fractional `votes` (averaged, or a distribution in a csv) are one annotation too
    averaged = get_sample_votes(samples.assign(votes=[np.array([1.5, 2.5, 0])] * 4), CLASSES)
    np.testing.assert_allclose(averaged[0], [0.375, 0.625, 0])
    assert votes[2].sum() == 0 and votes[3].sum() == 0
    assert get_sample_votes(samples.drop(columns=["votes", "label_distribution"]), CLASSES) is None
    assert get_sample_votes(samples.iloc[2:].drop(columns="label_distribution"), CLASSES) is None
    with pytest.raises(ValueError, match="sample 'a': votes has 2 values"):
        get_sample_votes(samples.assign(votes=[np.array([1, 2])] * 4), CLASSES)
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        get_sample_votes(samples.assign(votes=[np.array([1, -2, 0])] * 4), CLASSES)


def test_crowd_columns_round_trip_through_the_scores_file(tmp_path) -> None:
    frame = apply_crowd_votes(_scores(), VOTES, CLASSES).scores
    path = tmp_path / "scores.parquet"
    meta = {"classes": CLASSES, "method": "predictions", "recipe": {}}
    write_scores(frame, path, metadata=meta)
    schema = pq.read_schema(path)
    assert str(schema.field("votes").type) == "list<element: float>"
    read = read_scores(path).frame
    assert read["votes"].iloc[C] is None
    np.testing.assert_allclose(read["votes"].iloc[A], [0, 5, 0])
    assert read["consensus_label"].iloc[A] == "happiness"
    bad = frame.assign(consensus_quality=frame["consensus_quality"] + 1.0)
    write_scores(bad, path, metadata=meta)
    with pytest.raises(ScoresFormatError, match="consensus_quality .* outside \\[0, 1\\]"):
        read_scores(path)
    write_scores(frame.drop(columns="consensus_label"), path, metadata=meta)
    with pytest.raises(ScoresFormatError, match="lacks \\['consensus_label'\\]"):
        read_scores(path)


def test_a_crowd_of_two_or_more_backing_the_given_label_clears_the_models_flag() -> None:
    given = ["neutral"] * 4
    probs = np.array([[0.3, 0.6, 0.1]] * 4)  # the model says happiness: it flags all four
    votes = np.array([[5, 0, 0], [1, 0, 0], [0, 0, 0], [1, 4, 0]], dtype=float)
    samples = pd.DataFrame(
        {
            "sample_id": [f"t{i}.png" for i in range(4)],
            "split": "train",
            "given_label": given,
            "path": [f"/data/t{i}.png" for i in range(4)],
        }
    )
    readout = get_probability_readout(probs, np.zeros(4, dtype=int))
    before = assemble_scores(
        samples, CLASSES, {"predictions": readout}, method_name="predictions", flag_rule="argmax"
    )
    assert before["is_label_issue"].all()
    crowd = apply_crowd_votes(before, votes, CLASSES)
    after = crowd.scores
    # five voters back `neutral`: cleared, nothing proposed; one vote cannot clear; no
    # votes: the model alone; four of five for happiness: stays flagged, proposes it
    assert after["is_label_issue"].tolist() == [False, True, True, True]
    assert after["issue_type"].iloc[0] == "none" and after["proposed_label"].iloc[0] == "neutral"
    assert after["proposed_label"].iloc[3] == "happiness"
    assert crowd.summary["flags_cleared_by_consensus"] == 1


def test_a_run_s_columns_take_the_crowd_and_keep_votes_as_numbers() -> None:
    frame = _scores()
    columns = ScoreColumns.from_frame(frame)
    pd.testing.assert_frame_equal(columns.frame(), frame)
    crowd = apply_crowd_votes(columns, VOTES, CLASSES)
    assert isinstance(crowd.scores, ScoreColumns)
    after = crowd.scores.frame()
    assert after["issue_type"].iloc[A] == "mislabeled"  # five votes against its label
    # a frame keeps its own index through the crowd step
    shifted = frame.set_axis(frame.index + 100)
    assert apply_crowd_votes(shifted, VOTES, CLASSES).scores.index.tolist() == list(shifted.index)
    assert list(after.columns[-5:]) == [*CROWD_COLUMNS, "path"]
    assert after["votes"].iloc[C] is None and after["votes"].iloc[H] is None
    # the columns themselves hold numbers only: (N, K) rows, nulls on the side
    assert crowd.scores.columns["votes"].shape == (len(GIVEN), len(CLASSES))
    assert crowd.scores.null_rows["votes"].tolist() == [row.sum() == 0 for row in VOTES]


def test_the_run_s_label_quality_not_p_given_ranks_the_voted_images() -> None:
    """A run's label quality (its method's evidence, the training dynamics) speaks for the
    model in the consensus: with one vote each, the images keep the run's order."""
    probs = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.5, 0.3, 0.2]])
    samples = pd.DataFrame(
        {
            "sample_id": [f"q{i}.png" for i in range(4)],
            "split": "train",
            "given_label": ["neutral"] * 4,
            "path": [f"/data/q{i}.png" for i in range(4)],
        }
    )
    readout = get_probability_readout(probs, np.zeros(4, dtype=int))
    scores = assemble_scores(
        samples, CLASSES, {"predictions": readout}, method_name="predictions", flag_rule="argmax"
    )
    votes = np.array([[1, 0, 0]] * 4, dtype=float)
    by_model = apply_crowd_votes(scores, votes, CLASSES).scores["label_quality"].to_numpy()
    assert np.all(np.diff(by_model) < 0)  # p[given] alone: 0.8 > 0.7 > 0.6 > 0.5
    # the run learnt otherwise (say, the first image's label was fitted last)
    run = scores.assign(label_quality=[0.2, 0.4, 0.6, 0.9])
    by_run = apply_crowd_votes(run, votes, CLASSES).scores["label_quality"].to_numpy()
    assert np.all(np.diff(by_run) > 0)


def test_voted_and_unvoted_images_share_one_label_quality_scale() -> None:
    """An over-confident model: the crowd shows its 0.95 is right far less often. An
    unvoted image at 0.95 must not then outrank, unchanged, voted images that the
    consensus tempered: it takes the calibrated belief too."""
    rng = np.random.default_rng(0)
    n = 200
    given = rng.integers(0, 3, n)
    probs = np.full((n, 3), 0.025)
    probs[np.arange(n), given] = 0.95
    truth = np.where(rng.random(n) < 0.7, given, (given + rng.integers(1, 3, n)) % 3)
    votes = np.zeros((n, 3))
    for row in range(n - 1):  # the last image has no votes
        right = rng.random(3) < 0.8
        for vote in np.where(right, truth[row], (truth[row] + rng.integers(1, 3, 3)) % 3):
            votes[row, vote] += 1
    samples = pd.DataFrame(
        {
            "sample_id": [f"o{i}.png" for i in range(n)],
            "split": "train",
            "given_label": [CLASSES[g] for g in given],
            "path": [f"/data/o{i}.png" for i in range(n)],
        }
    )
    readout = get_probability_readout(probs, given)
    scores = assemble_scores(
        samples, CLASSES, {"predictions": readout}, method_name="predictions", flag_rule="argmax"
    )
    crowd = apply_crowd_votes(scores, votes, CLASSES)
    assert crowd.summary["temperature"] > 1.5
    quality = crowd.scores["label_quality"].to_numpy()
    # a voted image whose three votes all back its label, and the unvoted one, beside it
    backed = np.flatnonzero(votes[np.arange(n), given] == 3)
    assert quality[-1] < 0.9 and quality[-1] < quality[backed].min()
