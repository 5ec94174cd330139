"""Crowd votes and the model together: a consensus label, its quality and a soft label per image.

The issue asks for CROWDLAB's spirit (arXiv 2210.06812: weigh the model and the annotators
by how well each agrees with the consensus). CROWDLAB pools linearly; measured on simulated
crowds (tests/test_scoring_consensus.py) it then follows a fairly accurate model even where
two of three voters outvote it, and loses to the plain plurality vote. This module weighs
the same two sources by likelihood instead, as a one-coin Dawid-Skene model with the
classifier as prior (Dawid & Skene 1979; Raykar et al., JMLR 2010):

    P(true = c | x, votes) ∝ softmax(log p(c | x) / T) * a^v_c * ((1 - a) / (K - 1))^(n - v_c)

where v_c of an image's n votes name class c, `a` is the accuracy of one annotation and T
the temperature that calibrates the model. FER crowds are anonymous (FERPlus gives vote
counts, RAF-DB a distribution), so one `a` serves every annotator. `a` comes from how the
votes of one image agree (for two votes an image, how often they name the same class).
Where no image has two whole votes (one vote each, or distributions), that agreement
cannot be seen, and EM cannot stand in: a model trained on the labels already predicts
them, so the likelihood of one vote per image grows all the way to a = 1 and a single vote
could never be overruled. `a` is then the share of annotations that name the model's most
probable class. That agreement is also the prior (its sd: a bias of `_MODEL_AGREEMENT_SD`
and its sampling error) that images with two or more votes update, by their likelihood
under the one-coin model: one doubly labelled image among single votes cannot set `a` for
the whole dataset, and a large doubly labelled share speaks for itself. T is fitted by EM
on the images themselves: each round scores how well the model predicts the current
consensus. An image with no votes is the (calibrated) model's alone; a vote
row summing to 1 (a distribution) counts as one annotation spread over its classes.

The prior can carry more than the model's probabilities: `get_model_prior` puts a run's
label quality (the method's evidence and the training dynamics, which rank given labels
better than p[given] alone) in at the given label. "The model" here and below is whatever
`get_consensus` is given as `pred_probs`: `fercleaner score` gives it that prior. The
temperatures and `alpha` are scalars, fitted on at most `_FIT_ROWS` images.

The posterior is a belief about the one true class, sharper than the way people vote.
A soft label to train on should estimate the vote distribution instead (FERPlus trains
on it: Barsoum et al. 2016), so `vote_distribution` is the posterior predictive of one
more vote under a Dirichlet prior centred on the model at its own temperature S:

    q(c) = (v_c + alpha * p_S(c | x)) / (n + alpha)

where `alpha` (the model's worth in votes) and the temperature S maximise the likelihood of
each vote left out given the image's other votes (images with two or more votes). S is not
T: T makes the model predict the true class, sharper than people vote; S makes it predict
one more vote. Where the votes alone fix `a` less well than that prior does, they are
too few for S and `alpha` as well (one doubly labelled image put both at the ends of
their grids), so the model is taken as trained (S = 1: trained on one label per image,
it predicts one label) and worth one vote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fercleaner.scoring._validation import check_labels_probs

#: Temperatures tried when calibrating the model against the consensus.
_TEMPERATURES = np.geomspace(0.25, 4.0, 25)
#: EM rounds (the fit settles in a handful on every crowd measured).
_ROUNDS = 10
#: Bounds of the annotation accuracy `a` (strictly inside (1/K, 1) keeps logs finite).
_MAX_ACCURACY = 0.999
#: Model weights (in votes) tried for the vote distribution; one vote's worth without data.
_MODEL_WEIGHTS = np.geomspace(0.125, 64.0, 28)
_DEFAULT_MODEL_WEIGHT = 1.0
#: How far the model's agreement may be from the annotators' true accuracy (one sd of the
#: prior on `a`): it read 0.84 against a true 0.87 on FERPlus with one vote per image.
_MODEL_AGREEMENT_SD = 0.05
#: Points of the grid `a`'s posterior is computed on (1/K + 0.001 .. `_MAX_ACCURACY`).
_ACCURACY_GRID = 1000
#: Images `a`, the temperatures and `alpha` are fitted on, at most (evenly spaced among
#: those that qualify): one scalar is settled long before, and a million images fit in
#: seconds.
_FIT_ROWS = 50_000


@dataclass(frozen=True)
class Consensus:
    """What the crowd and the model agree on, per image (rows follow the input)."""

    label: np.ndarray
    """(N,) int: argmax of `soft_label`."""
    quality: np.ndarray
    """(N,) float in [0, 1]: `soft_label` at `label` (low = even the consensus is unsure)."""
    soft_label: np.ndarray
    """(N, K): the posterior over classes given the model and the votes."""
    votes: np.ndarray
    """(N,) float: annotations each image had (0 = the model alone)."""
    annotator_accuracy: float
    """Fitted probability that one annotation names the true class."""
    temperature: float
    """T, the model's temperature for the true class (> 1 = it was over-confident)."""
    vote_distribution: np.ndarray
    """(N, K): the expected share of votes per class (the soft label to train on)."""
    model_weight: float
    """`alpha`: how many votes the model's opinion is worth in `vote_distribution`."""
    vote_temperature: float
    """S, the model's temperature for predicting one more vote (in `vote_distribution`)."""


def get_consensus(votes: np.ndarray, pred_probs: np.ndarray) -> Consensus:
    """Combine (N, K) vote counts (or per-image distributions) with (N, K) model probabilities.

    Args:
        votes: (N, K) non-negative; counts per class, or a distribution per image; all-zero
            rows are images nobody labelled.
        pred_probs: (N, K) the model's side: its probabilities, or `get_model_prior`'s
            (out-of-sample ones suit the one-coin model best).

    Raises:
        ValueError: mismatched shapes, negative or non-finite votes, bad probabilities.
    """
    probs = check_labels_probs(np.zeros(len(pred_probs), dtype=np.int64), pred_probs)[1]
    votes = np.asarray(votes, dtype=np.float64)
    if votes.shape != probs.shape:
        raise ValueError(f"votes have shape {votes.shape}; pred_probs {probs.shape}")
    if not np.isfinite(votes).all() or (votes < 0).any():
        raise ValueError("votes must be finite and non-negative")
    k = probs.shape[1]
    if k < 2:
        raise ValueError(f"a consensus needs two or more classes; pred_probs has {k}")
    counts = votes.sum(axis=1)
    log_model = np.log(np.clip(probs, 1e-12, 1.0))
    voted = counts > 0
    # `a` from how the votes of one image agree (no model in it, so noise votes cannot talk
    # themselves up), under a prior at the model's agreement (module docstring)
    several = _fit_rows(_several_whole_votes(votes, counts))
    accuracy, votes_fix_accuracy = _annotator_accuracy(votes, counts, probs, k, several)
    posterior = _posterior(log_model, votes, counts, accuracy, k)
    fit = _fit_rows(voted)
    temperature = 1.0
    for _ in range(_ROUNDS):
        # calibrate where the crowd speaks: elsewhere the consensus is the model itself
        temperature = _fit_temperature(log_model[fit], posterior[fit]) if fit.size else 1.0
        posterior = _posterior(log_model / temperature, votes, counts, accuracy, k)
    label = posterior.argmax(axis=1)
    vote_temperature, model_weight = (
        _fit_vote_model(votes, counts, log_model, several)
        if votes_fix_accuracy
        else (1.0, _DEFAULT_MODEL_WEIGHT)
    )
    predictive = _softmax(log_model / vote_temperature)
    vote_distribution = (votes + model_weight * predictive) / (counts[:, None] + model_weight)
    return Consensus(
        label=label,
        quality=posterior[np.arange(len(label)), label],
        soft_label=posterior,
        votes=counts,
        annotator_accuracy=accuracy,
        temperature=temperature,
        vote_distribution=vote_distribution,
        model_weight=model_weight,
        vote_temperature=vote_temperature,
    )


def get_model_prior(
    pred_probs: np.ndarray, labels: np.ndarray, label_quality: np.ndarray
) -> np.ndarray:
    """(N, K) class probabilities that believe in each given label as `label_quality` does.

    A run's label quality ranks given labels better than the model's p[given] alone (on
    FERPlus with one vote it adds the training dynamics: AP 0.606 vs 0.591 for p[given],
    docs/scoring.md). It is not always a probability (`normalized_margin` is not), so it
    is put on the model's scale by rank: the image with the i-th lowest label quality
    gets the i-th lowest p[given]. The other classes share the rest as the model shares
    them (evenly where it gave them nothing). Label quality = p[given] returns the model.

    Args:
        pred_probs: (N, K) the model's class probabilities.
        labels: (N,) given class indices.
        label_quality: (N,) any score where higher = the given label is likelier right;
            a NaN row keeps the model's p[given].

    Raises:
        ValueError: mismatched shapes, bad probabilities, a row that sums to 0, or an
            infinite label quality.
    """
    labels, probs = check_labels_probs(labels, pred_probs)
    label_quality = np.asarray(label_quality, dtype=np.float64)
    if label_quality.shape != labels.shape:
        raise ValueError(f"label_quality must have shape ({len(labels)},)")
    totals = probs.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        row = int(np.flatnonzero(totals[:, 0] <= 0)[0])
        raise ValueError(f"pred_probs row {row} sums to 0; every row must be a distribution")
    probs = probs / totals  # stored float32 rows: exactly 1
    rows = np.arange(len(labels))
    given = probs[rows, labels]
    if np.isinf(label_quality).any():
        row = int(np.flatnonzero(np.isinf(label_quality))[0])
        raise ValueError(f"label_quality row {row} is infinite; NaN marks a missing value")
    # an image without a label quality (no source scored it) keeps the model's belief
    belief = given.copy()
    known = np.flatnonzero(~np.isnan(label_quality))
    # ties in label quality keep the model's own order, so row order never matters
    order = known[np.lexsort((given[known], label_quality[known]))]
    belief[order] = np.sort(given[known])
    rest = 1.0 - given
    k = probs.shape[1]
    share = np.where(
        rest[:, None] > 1e-12, probs / np.clip(rest, 1e-12, None)[:, None], 1.0 / max(k - 1, 1)
    )
    prior = share * (1.0 - belief)[:, None]
    prior[rows, labels] = belief
    return prior


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _fit_vote_model(
    votes: np.ndarray, counts: np.ndarray, log_model: np.ndarray, several: np.ndarray
) -> tuple[float, float]:
    """(S, alpha): the model's temperature and worth in votes that best predict each vote
    left out of its image's other votes.

    A vote for c left out of n leaves (v_c - 1 + alpha p_S(c)) / (n - 1 + alpha) as its
    prediction; the log likelihood sums that over the votes (v_c of them for class c).
    Only whole votes on images with two or more say anything about S and alpha: `several`
    are those rows (`_several_whole_votes`, thinned), at least one.
    """
    v, n = votes[several], counts[several, None]
    best, best_loss = (1.0, _DEFAULT_MODEL_WEIGHT), np.inf
    for temperature in _TEMPERATURES:
        p = np.clip(_softmax(log_model[several] / temperature), 1e-12, 1.0)
        for alpha in _MODEL_WEIGHTS:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_pred = np.log(np.clip(v - 1 + alpha * p, 1e-12, None)) - np.log(n - 1 + alpha)
            loss = -float(np.where(v > 0, v * log_pred, 0.0).sum())
            if loss < best_loss:
                best, best_loss = (float(temperature), float(alpha)), loss
    return best


def _fit_rows(mask: np.ndarray) -> np.ndarray:
    """Indices of the rows in `mask`, evenly thinned to `_FIT_ROWS`."""
    rows = np.flatnonzero(mask)
    if len(rows) > _FIT_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, _FIT_ROWS).astype(np.int64)]
    return rows


def _posterior(
    log_prior: np.ndarray, votes: np.ndarray, counts: np.ndarray, accuracy: float, k: int
) -> np.ndarray:
    """(N, K) P(true class | model, votes) under the one-coin annotator model."""
    log_right, log_wrong = np.log(accuracy), np.log((1.0 - accuracy) / max(k - 1, 1))
    logits = log_prior - np.logaddexp.reduce(log_prior, axis=1, keepdims=True)
    logits = logits + votes * log_right + (counts[:, None] - votes) * log_wrong
    logits -= logits.max(axis=1, keepdims=True)
    posterior = np.exp(logits)
    return posterior / posterior.sum(axis=1, keepdims=True)


def _annotator_accuracy(
    votes: np.ndarray, counts: np.ndarray, probs: np.ndarray, k: int, several: np.ndarray
) -> tuple[float, bool]:
    """(`a`, whether the votes alone fix it at least as well as the model's agreement).

    The most probable `a` on a grid: the likelihood of the images with two or more whole
    votes under the one-coin model with every true class equally likely (it needs no
    model, so neither the model nor noise votes can talk `a` up; for two votes an image
    it is the rate at which they agree), times a normal prior at the model's agreement
    with its sd (`_model_agreement`). Many such images outweigh the prior; one or two barely
    move it, however they vote. The mode, not the mean: the agreement is often at a bound
    of `a` (a model trained on the labels agrees with nearly every vote), and a mean of a
    prior cut off there would move `a` off it with no evidence. "The votes alone fix it"
    is the sd of their likelihood over the grid; unanimous pairs fix `a` near 1 soon.
    `several` are the rows of those images (`_several_whole_votes`, thinned).
    """
    model, model_sd = _model_agreement(votes, counts, probs, k)
    if not several.size:
        return model, False
    grid = np.union1d(np.linspace(1.0 / k + 1e-3, _MAX_ACCURACY, _ACCURACY_GRID), [model])
    log_likelihood = _votes_log_likelihood(votes[several], grid, k)
    votes_alone = _normalised(log_likelihood)
    mean = float(votes_alone @ grid)
    votes_sd = float(np.sqrt(votes_alone @ (grid - mean) ** 2))
    log_posterior = log_likelihood - 0.5 * ((grid - model) / model_sd) ** 2
    return float(grid[np.argmax(log_posterior)]), votes_sd <= model_sd


def _votes_log_likelihood(votes: np.ndarray, grid: np.ndarray, k: int) -> np.ndarray:
    """(G,) log P(votes | a) for each `a` of `grid`, summed over the images (rows), with
    every true class equally likely: log mean_c a^v_c ((1 - a) / (K - 1))^(n - v_c).

    The likelihood does not depend on which class got which count, so each row's counts
    are sorted and images that split their votes alike are counted once with their
    number (ten votes split at most 42 ways); one grid point at a time keeps memory at
    one (patterns, K) array.
    """
    patterns, repeats = np.unique(np.sort(votes, axis=1), axis=0, return_counts=True)
    totals = patterns.sum(axis=1, keepdims=True)
    out = np.empty(len(grid))
    for i, accuracy in enumerate(grid):
        log_wrong = np.log((1.0 - accuracy) / max(k - 1, 1))
        per_class = patterns * np.log(accuracy) + (totals - patterns) * log_wrong
        out[i] = repeats @ (np.logaddexp.reduce(per_class, axis=1) - np.log(k))
    return out


def _normalised(log_weights: np.ndarray) -> np.ndarray:
    """Weights proportional to exp(`log_weights`), summing to 1."""
    weights = np.exp(log_weights - log_weights.max())
    return weights / weights.sum()


def _several_whole_votes(votes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(N,) bool: images with two or more whole votes, the only ones whose votes can be
    compared with each other (a distribution or a fractional row cannot)."""
    return (counts >= 2) & np.all(np.isclose(votes, np.round(votes)), axis=1)


def _model_agreement(
    votes: np.ndarray, counts: np.ndarray, probs: np.ndarray, k: int
) -> tuple[float, float]:
    """`a` without pairs of votes, and how far it may be off (one sd).

    `a` is the share of annotations naming the prior's top class. It reads the model as a
    judge of the votes rather than asking the likelihood, which a model trained on these
    labels pushes to a = 1. Where the model errs, a right vote counts as wrong (low); where
    it learnt a wrong label, a wrong vote counts as right (high). FERPlus with one vote
    per image: 0.84 against a true 0.87 (docs/scoring.md). The sd is that bias,
    `_MODEL_AGREEMENT_SD`, and the share's sampling error over the annotations together:
    ten annotations say much less than a million.
    """
    total = counts.sum()
    if total <= 0:
        return _MAX_ACCURACY, _MODEL_AGREEMENT_SD
    # classes tied at the top share the credit (a uniform model favours none)
    top = probs >= probs.max(axis=1, keepdims=True) - 1e-12
    agree = float(((votes * top).sum(axis=1) / top.sum(axis=1)).sum() / total)
    sd = float(np.sqrt(_MODEL_AGREEMENT_SD**2 + agree * (1.0 - agree) / total))
    return float(np.clip(agree, 1.0 / k + 1e-3, _MAX_ACCURACY)), sd


def _fit_temperature(log_model: np.ndarray, posterior: np.ndarray) -> float:
    """The temperature whose softened model best predicts the current consensus (soft NLL)."""
    best, best_loss = 1.0, np.inf
    for temperature in _TEMPERATURES:
        scaled = log_model / temperature
        log_norm = scaled - np.logaddexp.reduce(scaled, axis=1, keepdims=True)
        loss = -float((posterior * log_norm).sum(axis=1).mean())
        if loss < best_loss:
            best, best_loss = float(temperature), loss
    return best
