"""The crowd + model consensus on hand-made arrays: who wins when; against cleanlab's CROWDLAB."""

from __future__ import annotations

import numpy as np
import pytest

from fercleaner.scoring.consensus import get_consensus, get_model_prior


def _crowd(n=400, k=4, annotators=5, accuracy=0.7, model_accuracy=0.8, seed=0):
    """True classes, per-annotator labels (n, annotators), model probabilities (given accuracy)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    right = rng.random((n, annotators)) < accuracy
    wrong = (truth[:, None] + rng.integers(1, k, (n, annotators))) % k
    labels = np.where(right, truth[:, None], wrong)
    predicted = np.where(rng.random(n) < model_accuracy, truth, (truth + rng.integers(1, k, n)) % k)
    probs = np.full((n, k), 0.1 / (k - 1))
    probs[np.arange(n), predicted] = 0.9
    return truth, labels, probs


def _counts(labels, k):
    return np.stack([np.bincount(row, minlength=k) for row in labels]).astype(float)


def test_an_image_nobody_labelled_is_the_models_alone():
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    votes = np.array([[0, 0, 0], [0, 9, 1]], dtype=float)
    result = get_consensus(votes, probs)
    calibrated = probs[0] ** (1 / result.temperature)
    np.testing.assert_allclose(result.soft_label[0], calibrated / calibrated.sum())
    assert result.label.tolist() == [0, 1] and result.votes.tolist() == [0, 10]


def test_combination_beats_both_the_plurality_vote_and_the_model():
    truth, labels, probs = _crowd(annotators=3, accuracy=0.65, model_accuracy=0.75)
    votes = _counts(labels, 4)
    result = get_consensus(votes, probs)
    plurality = (votes + 1e-6 * probs).argmax(axis=1)
    accuracy = (result.label == truth).mean()
    assert accuracy > (plurality == truth).mean() and accuracy > (probs.argmax(1) == truth).mean()
    # the consensus is surer where it is right
    assert (
        result.quality[result.label == truth].mean() > result.quality[result.label != truth].mean()
    )


def test_the_fit_recovers_the_crowds_accuracy_and_calibrates_the_model():
    truth, labels, probs = _crowd(annotators=3, accuracy=0.65, model_accuracy=0.75, seed=2)
    result = get_consensus(_counts(labels, 4), probs)
    assert abs(result.annotator_accuracy - 0.65) < 0.03
    assert result.temperature > 1.2  # 0.9 on a class that is right 75% of the time: soften
    rng = np.random.default_rng(1)
    random_votes = _counts(rng.integers(0, 4, labels.shape), 4)
    with_noise_crowd = get_consensus(random_votes, probs)
    assert with_noise_crowd.annotator_accuracy < 0.4  # chance is 0.25
    assert (with_noise_crowd.label == probs.argmax(axis=1)).mean() > 0.97


def test_more_votes_for_a_class_raise_its_share():
    probs = np.tile([0.5, 0.3, 0.2], (6, 1))
    votes = np.array([[5, 5, 0], [5, 5, 0], [4, 6, 0], [3, 7, 0], [2, 8, 0], [0, 10, 0]], float)
    shares = get_consensus(votes, probs).soft_label[:, 1]
    assert np.all(np.diff(shares[1:]) > 0)


@pytest.mark.parametrize(
    ("annotators", "accuracy", "model_accuracy"), [(3, 0.65, 0.75), (5, 0.6, 0.7), (10, 0.55, 0.8)]
)
def test_more_accurate_than_cleanlab_crowdlab_on_anonymous_crowds(
    annotators, accuracy, model_accuracy
):
    """CROWDLAB pools linearly and follows the model here; the likelihood weighs two votes."""
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    truth, labels, probs = _crowd(
        n=600, annotators=annotators, accuracy=accuracy, model_accuracy=model_accuracy
    )
    theirs = get_label_quality_multiannotator(pd.DataFrame(labels), probs, verbose=False)
    cleanlab_label = theirs["label_quality"]["consensus_label"].to_numpy()
    ours = get_consensus(_counts(labels, 4), probs)
    assert (ours.label == truth).mean() > (cleanlab_label == truth).mean() + 0.05


@pytest.mark.parametrize(
    ("votes", "message"),
    [
        (np.ones((2, 2)), "shape"),
        (-np.ones((2, 3)), "non-negative"),
        (np.full((2, 3), np.nan), "finite"),
    ],
)
def test_bad_votes_say_what_is_wrong(votes, message):
    with pytest.raises(ValueError, match=message):
        get_consensus(votes, np.full((2, 3), 1 / 3))


def test_the_vote_distribution_weighs_the_model_by_how_well_it_predicts_left_out_votes():
    rng = np.random.default_rng(0)
    n, k, voters = 400, 4, 5
    model = rng.dirichlet(np.ones(k) * 0.7, size=n)
    informed = np.stack([rng.multinomial(voters, p) for p in model]).astype(float)
    # votes drawn from the model's own distribution: the model is worth many votes
    trusted = get_consensus(informed, model)
    # the same votes against a model that knows nothing of these images: worth little
    shuffled = get_consensus(informed, model[rng.permutation(n)])
    assert trusted.model_weight > 4 * shuffled.model_weight
    for result in (trusted, shuffled):
        assert result.vote_distribution.shape == (n, k)
        np.testing.assert_allclose(result.vote_distribution.sum(axis=1), 1.0, atol=1e-9)
    # the votes follow the model as it is: no temperature helps it predict them
    assert trusted.vote_temperature == pytest.approx(1.0, abs=0.15)
    # q = (v + alpha p_S) / (n + alpha), with p_S the model at its vote temperature
    t, alpha = trusted.vote_temperature, trusted.model_weight
    p_t = model ** (1 / t) / (model ** (1 / t)).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        trusted.vote_distribution, (informed + alpha * p_t) / (voters + alpha), rtol=1e-6
    )


def test_without_two_votes_on_any_image_the_model_is_worth_one_vote():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    votes = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)
    result = get_consensus(votes, probs)
    assert result.model_weight == 1.0 and result.vote_temperature == 1.0
    # an unvoted image's vote distribution is the model's alone, as trained
    np.testing.assert_allclose(result.vote_distribution[2], probs[2], atol=1e-9)


def test_fractional_rows_do_not_count_as_pairs_of_votes():
    probs = np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    whole = np.array([[3, 0], [0, 2], [1, 1]], dtype=float)
    # rows averaged over raters sum to >= 2 but their votes cannot be paired
    averaged = np.array([[2.5, 0.5], [0.25, 1.75], [1.5, 0.5]])
    assert get_consensus(whole, probs).annotator_accuracy < 0.999
    # only the agreement of whole votes estimates `a`; with none, the model's top class
    # judges the votes and the model's weight in the vote distribution stays one vote
    assert get_consensus(averaged, probs).model_weight == 1.0
    # (pairing them would read their fractions as disagreement: a near chance, 0.5);
    # 2.5 + 1.75 of the 7 votes name the model's top class, and the tied third row's
    # votes count half for each of its two top classes: (1.5 + 0.5) / 2
    assert get_consensus(averaged, probs).annotator_accuracy == pytest.approx(5.25 / 7)


def test_one_vote_per_image_is_weighed_against_the_model_not_always_followed():
    """Without pairs `a` is how often a vote names the model's top class, not the likelihood's
    a = 1, so a sure model overrules a single vote it disagrees with."""
    truth, labels, probs = _crowd(n=2000, annotators=1, accuracy=0.7, model_accuracy=0.8)
    votes = _counts(labels, 4)
    result = get_consensus(votes, probs)
    agreement = (labels[:, 0] == probs.argmax(axis=1)).mean()
    assert result.annotator_accuracy == pytest.approx(agreement)
    assert result.annotator_accuracy < 0.7  # the model's errors count against the votes
    overruled = result.label != labels[:, 0]
    assert overruled.any()
    # the consensus is right more often than the one vote (0.7)
    assert (result.label == truth).mean() > (labels[:, 0] == truth).mean() + 0.05


def test_a_few_doubly_labelled_images_among_single_votes_do_not_set_the_accuracy():
    """One image with two votes used to set `a` for everyone: 0.999 when they agreed (no
    single vote ever overruled), chance when they did not (every vote ignored)."""
    truth, labels, probs = _crowd(n=2000, annotators=1, accuracy=0.7, model_accuracy=0.8)
    single = get_consensus(_counts(labels, 4), probs)
    for pair in ([2, 0, 0, 0], [1, 1, 0, 0]):
        votes = _counts(labels, 4)
        votes[:2] = pair
        result = get_consensus(votes, probs)
        assert result.annotator_accuracy == pytest.approx(single.annotator_accuracy, abs=0.02)
        assert (result.label != votes.argmax(axis=1))[2:].any()  # single votes overruled
        # too few pairs for the vote distribution's fit: the model as trained, one vote
        assert result.vote_temperature == 1.0 and result.model_weight == 1.0


def test_one_agreeing_pair_does_not_move_an_accuracy_at_its_bound():
    """A model that agrees with every single vote puts the prior at the top bound of `a`;
    one more image whose two votes agree supports it and must not pull `a` down."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, 2000)
    probs = np.full((2000, 4), 0.1)
    probs[np.arange(2000), labels] = 0.7  # the model names every vote
    votes = np.eye(4)[labels]
    alone = get_consensus(votes, probs).annotator_accuracy
    votes[0] = [2, 0, 0, 0]
    assert alone == pytest.approx(0.999)
    assert get_consensus(votes, probs).annotator_accuracy == pytest.approx(alone)


def test_a_consensus_needs_two_classes():
    with pytest.raises(ValueError, match="two or more classes"):
        get_consensus(np.array([[2.0], [3.0]]), np.ones((2, 1)))


def test_a_large_doubly_labelled_share_speaks_for_itself():
    truth, labels, probs = _crowd(n=2000, annotators=1, accuracy=0.7, model_accuracy=0.8)
    _, pairs, _ = _crowd(n=2000, annotators=2, accuracy=0.7, model_accuracy=0.8)
    votes = _counts(labels, 4)
    votes[:1000] = _counts(pairs[:1000], 4)  # half the images have two votes
    result = get_consensus(votes, probs)
    model_agreement = get_consensus(_counts(labels, 4), probs).annotator_accuracy
    assert model_agreement < 0.66  # the model's errors count against the votes
    assert result.annotator_accuracy == pytest.approx(0.7, abs=0.03)


def test_the_vote_temperature_softens_a_model_sharper_than_the_crowd():
    rng = np.random.default_rng(3)
    n, k, voters = 600, 4, 6
    crowd = rng.dirichlet(np.ones(k), size=n)
    # the model says what the crowd says, twice as sure: S = 2 undoes it
    sharp = crowd**2 / (crowd**2).sum(axis=1, keepdims=True)
    votes = np.stack([rng.multinomial(voters, p) for p in crowd]).astype(float)
    result = get_consensus(votes, sharp)
    assert 1.6 < result.vote_temperature < 2.5


def test_the_model_prior_believes_in_each_given_label_as_the_label_quality_ranks_it():
    probs = np.array(
        [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.5, 0.25, 0.25], [0.9, 0.1, 0.0], [1.0, 0.0, 0.0]]
    )
    labels = np.array([0, 1, 0, 0, 0])
    given = probs[np.arange(5), labels]  # 0.7 0.6 0.5 0.9 1.0
    # p[given] itself as label quality: the model comes back unchanged
    np.testing.assert_allclose(get_model_prior(probs, labels, given), probs, atol=1e-12)
    # quality reverses the order of rows 0-2: they swap beliefs, the model's values kept
    quality = np.array([0.1, 0.5, 0.9, 0.95, 0.99])
    prior = get_model_prior(probs, labels, quality)
    np.testing.assert_allclose(prior[np.arange(5), labels], [0.5, 0.6, 0.7, 0.9, 1.0])
    np.testing.assert_allclose(prior.sum(axis=1), 1.0)
    # the other classes share the rest as the model shares them
    np.testing.assert_allclose(prior[0, 1:], [0.5 * 2 / 3, 0.5 / 3])
    np.testing.assert_allclose(prior[2, 1:], [0.15, 0.15])
    # the model gave the other classes nothing and the belief drops: they share it evenly
    worst = get_model_prior(probs, labels, np.array([0.9, 0.8, 0.7, 0.6, 0.0]))
    np.testing.assert_allclose(worst[4], [0.5, 0.25, 0.25])
    # an image no source scored keeps the model's belief; the others rank among themselves
    unscored = get_model_prior(probs, labels, np.array([0.1, np.nan, 0.95, 0.5, 0.99]))
    np.testing.assert_allclose(unscored[np.arange(5), labels], [0.5, 0.6, 0.9, 0.7, 1.0])
    with pytest.raises(ValueError, match="label_quality"):
        get_model_prior(probs, labels, np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="row 1 is infinite"):
        get_model_prior(probs, labels, np.array([0.1, np.inf, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="row 2 sums to 0"):
        get_model_prior(np.vstack([probs[:2], np.zeros(3)]), labels[:3], quality[:3])


def test_the_model_prior_does_not_depend_on_row_order_and_takes_float32_rows():
    probs = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.5, 0.5, 0.0]])
    labels = np.array([0, 0, 0])
    tied = np.array([0.3, 0.3, 0.3])
    # tied label quality keeps the model's own order: the model comes back
    np.testing.assert_allclose(get_model_prior(probs, labels, tied), probs, atol=1e-12)
    order = [2, 0, 1]
    np.testing.assert_allclose(
        get_model_prior(probs[order], labels[order], tied[order]),
        get_model_prior(probs, labels, tied)[order],
    )
    # float32 rows that miss 1 by a rounding step still give probabilities
    stored = np.array([[0.9999999, 1e-6, 0.0], [0.2, 0.7, 0.1]], dtype=np.float32)
    prior = get_model_prior(stored, np.array([0, 1]), np.array([0.2, 0.9]))
    np.testing.assert_allclose(prior.sum(axis=1), 1.0)
    assert (prior >= 0).all() and (prior <= 1).all()


def test_classes_tied_at_the_model_s_top_share_the_agreement():
    """A uniform model agrees with every vote alike: `a` is chance, whichever class is voted."""
    uniform = np.full((4, 4), 0.25)
    for voted in range(4):
        votes = np.zeros((4, 4))
        votes[:, voted] = 1
        assert get_consensus(votes, uniform).annotator_accuracy == pytest.approx(0.25, abs=2e-3)


def test_the_scalars_are_fitted_on_an_even_thinning_of_the_images(monkeypatch):
    from fercleaner.scoring import consensus

    monkeypatch.setattr(consensus, "_FIT_ROWS", 3)
    assert consensus._fit_rows(np.ones(10, dtype=bool)).tolist() == [0, 4, 9]
    assert consensus._fit_rows(np.arange(10) % 5 == 0).tolist() == [0, 5]
    # 2,000 images thinned to 500 fit about the temperature all of them do
    truth, labels, probs = _crowd(n=2000, annotators=3, accuracy=0.65, model_accuracy=0.75)
    monkeypatch.setattr(consensus, "_FIT_ROWS", 2000)
    full = get_consensus(_counts(labels, 4), probs).temperature
    monkeypatch.setattr(consensus, "_FIT_ROWS", 500)
    assert get_consensus(_counts(labels, 4), probs).temperature == pytest.approx(full, rel=0.15)
