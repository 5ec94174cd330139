"""Noise protocols: seeded pure functions turning a clean(er) sample table into a noisy one + truth.

- `annotator` (datasets with votes, e.g. FERPlus): the given label is one tagger's emotion
  vote drawn at random from the image's votes; the truth is the strict majority of all
  its votes (including `unknown`/`NF` votes in the total). Images without a strict
  majority emotion are left out and counted.
- `votes` (issue 10, the same data): k of each image's emotion votes are visible (a seeded
  draw without replacement), the given label is their plurality (a tie goes to the tied
  class drawn first, so each tied class is equally likely); the truth is as `annotator`.
- `symmetric` (the SCN/EAC protocol): in every class, round(rate * n_k) samples chosen
  uniformly are flipped to a uniformly drawn different class.
- `pairflip`: the same selection, flipped to the most confusable partner class
  (`classes.PAIRFLIP_PARTNERS`, first partner present among the dataset's classes).

The truth of `symmetric`/`pairflip` is the dataset's own given label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# PAIRFLIP_PARTNERS: re-exported, fercleaner.bench names it
from fercleaner.arrays import to_matrix
from fercleaner.classes import PAIRFLIP_PARTNERS as PAIRFLIP_PARTNERS
from fercleaner.classes import get_pairflip_partners
from fercleaner.errors import DatasetError

#: Protocol names `make_noisy` understands.
PROTOCOLS = ("annotator", "votes", "symmetric", "pairflip")
#: Protocols whose truth comes from per-image votes (no `rate`).
VOTE_PROTOCOLS = ("annotator", "votes")


@dataclass(frozen=True)
class NoisyDataset:
    """A noisy sample table and its ground truth, joined by `sample_id`."""

    samples: pd.DataFrame
    """The input table with `given_label` replaced by the noisy label (rows left out removed)."""
    truth: pd.DataFrame
    """sample_id, true_label, given_label, is_noisy (+ votes when the input had them)."""
    classes: list[str]
    """Ordered class names."""
    protocol: dict[str, Any] = field(default_factory=dict)
    """name, rate, seed, counts (samples, noisy, left_out) — recorded in bench.json."""

    def select(self, mask: np.ndarray) -> NoisyDataset:
        """The rows where `mask` is True (same order); the protocol record's counts follow."""
        mask = np.asarray(mask, dtype=bool)
        truth = self.truth.loc[mask].reset_index(drop=True)
        protocol = {
            **self.protocol,
            "samples": len(truth),
            "noisy": int(truth["is_noisy"].sum()),
            "noise_rate": float(truth["is_noisy"].mean()) if len(truth) else 0.0,
        }
        return NoisyDataset(
            samples=self.samples.loc[mask].reset_index(drop=True),
            truth=truth,
            classes=self.classes,
            protocol=protocol,
        )


def make_noisy(
    samples: pd.DataFrame,
    classes: Sequence[str],
    *,
    protocol: str,
    rate: float = 0.2,
    seed: int = 0,
    visible: int = 3,
) -> NoisyDataset:
    """Apply a protocol by name (see PROTOCOLS); `rate` is ignored by the vote protocols,
    `visible` (votes shown per image) is used by `votes` only."""
    if protocol == "annotator":
        return make_annotator_noise(samples, classes, seed=seed)
    if protocol == "votes":
        return make_vote_noise(samples, classes, visible=visible, seed=seed)
    if protocol == "symmetric":
        return make_symmetric_noise(samples, classes, rate=rate, seed=seed)
    if protocol == "pairflip":
        return make_pairflip_noise(samples, classes, rate=rate, seed=seed)
    raise ValueError(f"unknown noise protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def make_annotator_noise(
    samples: pd.DataFrame, classes: Sequence[str], *, seed: int
) -> NoisyDataset:
    """Given label = one tagger's emotion vote; truth = strict majority of the votes.

    Needs a `votes` column (per-class counts over `classes`, or a probability
    distribution such as a synthetic soft label); `votes_unknown` and `votes_nf` count
    towards the total when present.
    """
    classes = list(classes)
    votes, majority = _strict_majority(samples, classes, protocol="annotator")
    rng = np.random.default_rng(seed)
    emotion_votes = votes.sum(axis=1)
    kept = majority & (emotion_votes > 0)
    # one tagger per image: inverse-CDF draw over the emotion votes (vectorised, seeded)
    cdf = np.cumsum(votes, axis=1) / np.maximum(emotion_votes, 1)[:, None]
    drawn = (cdf <= rng.random(len(votes))[:, None]).sum(axis=1).clip(0, len(classes) - 1)
    names = np.array(classes, dtype=object)
    noisy = samples.loc[kept].copy()
    noisy["given_label"] = names[drawn[kept]]
    truth = _truth(noisy, names[votes.argmax(axis=1)[kept]], votes=votes[kept])
    return NoisyDataset(
        samples=noisy.reset_index(drop=True),
        truth=truth,
        classes=classes,
        protocol=_record("annotator", None, seed, truth, left_out=int((~kept).sum())),
    )


def make_vote_noise(
    samples: pd.DataFrame, classes: Sequence[str], *, visible: int, seed: int
) -> NoisyDataset:
    """k = `visible` emotion votes shown per image; given label = their plurality.

    The draw is without replacement from the image's emotion votes (whole counts, as
    FERPlus has); a plurality tie goes to the tied class whose vote was drawn first. The
    truth is the strict majority of all votes (`votes_unknown`, `votes_nf` count towards
    the total). Left out and counted: images without a strict majority, and images with
    fewer than k emotion votes.

    The samples gain `visible_votes` (int32 counts over `classes`); the truth gains
    `visible_votes` and `visible_order` (the k drawn class indices in draw order, one
    anonymous annotator each).
    """
    classes = list(classes)
    if visible < 1:
        raise ValueError(f"--votes-visible must be at least 1; got {visible}")
    votes, majority = _strict_majority(samples, classes, protocol="votes")
    if not np.allclose(votes, np.round(votes)):
        raise DatasetError(
            "the votes protocol draws whole votes, but this dataset's votes are fractions "
            "(a label distribution); use --protocol annotator for it"
        )
    counts = np.round(votes).astype(np.int64)
    order, enough = _draw_votes(counts, visible, np.random.default_rng(seed))
    shown = np.zeros_like(counts)
    np.add.at(shown, (np.repeat(np.arange(len(counts)), visible), order.ravel()), 1)
    # plurality; a tie goes to the tied class drawn first (each tied class equally likely)
    tied = shown == shown.max(axis=1, keepdims=True)
    first = np.take_along_axis(tied, order, axis=1).argmax(axis=1)
    plurality = order[np.arange(len(order)), first]
    kept = majority & enough
    names = np.array(classes, dtype=object)
    noisy = samples.loc[kept].copy()
    noisy["given_label"] = names[plurality[kept]]
    noisy["visible_votes"] = list(shown[kept].astype(np.int32))
    truth = _truth(noisy, names[votes.argmax(axis=1)[kept]], votes=votes[kept])
    truth["visible_votes"] = list(shown[kept].astype(np.float32))
    truth["visible_order"] = list(order[kept].astype(np.int32))
    record = _record("votes", None, seed, truth, left_out=int((~kept).sum()))
    record.update(
        votes_visible=visible,
        left_out_no_majority=int((~majority).sum()),
        left_out_too_few_votes=int((majority & ~enough).sum()),
    )
    return NoisyDataset(
        samples=noisy.reset_index(drop=True), truth=truth, classes=classes, protocol=record
    )


def _strict_majority(
    samples: pd.DataFrame, classes: list[str], *, protocol: str
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) emotion votes and (N,) whether the top emotion has a strict majority of all votes."""
    if "votes" not in samples.columns:
        raise DatasetError(
            f"the {protocol} protocol needs per-image votes (a `votes` column, as FERPlus or "
            "fer2013 with fer2013new.csv provide); use --protocol symmetric or pairflip for "
            "this dataset"
        )
    votes = to_matrix(samples["votes"])
    if votes.shape[1] != len(classes):
        raise DatasetError(
            f"votes have {votes.shape[1]} entries per image; expected one per class {classes}"
        )
    total = votes.sum(axis=1)
    for extra in ("votes_unknown", "votes_nf"):
        if extra in samples.columns:
            total = total + samples[extra].fillna(0).to_numpy(dtype=np.float64)
    top = votes.argmax(axis=1)
    return votes, votes[np.arange(len(votes)), top] * 2 > total


def _draw_votes(
    counts: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) class indices drawn without replacement from each row's votes, in draw order,
    and (N,) whether the row had k votes to draw (rows without: class 0 fills the gaps)."""
    n_votes = counts.sum(axis=1)
    width = max(int(n_votes.max(initial=0)), k)
    # the j-th vote of a row, its votes laid out class by class: the classes whose
    # cumulative count is <= j
    position = np.arange(width)
    pool = (np.cumsum(counts, axis=1)[:, None, :] <= position[None, :, None]).sum(axis=2)
    keys = rng.random((len(counts), width))
    keys[position[None, :] >= n_votes[:, None]] = np.inf  # no such vote
    order = np.argsort(keys, axis=1, kind="stable")[:, :k]
    drawn = np.take_along_axis(pool, order, axis=1).clip(0, counts.shape[1] - 1)
    enough = n_votes >= k
    drawn[~enough] = 0
    return drawn, enough


def make_symmetric_noise(
    samples: pd.DataFrame, classes: Sequence[str], *, rate: float, seed: int
) -> NoisyDataset:
    """Flip round(rate * n_k) samples of every class k to a uniformly drawn different class."""
    classes = list(classes)
    rng = np.random.default_rng(seed)

    def target(k: int, count: int) -> np.ndarray:
        shift = rng.integers(1, len(classes), size=count)
        return (k + shift) % len(classes)

    return _flip(samples, classes, rate=rate, seed=seed, rng=rng, target=target, name="symmetric")


def make_pairflip_noise(
    samples: pd.DataFrame, classes: Sequence[str], *, rate: float, seed: int
) -> NoisyDataset:
    """Flip round(rate * n_k) samples of every class k to its partner (`get_pairflip_partners`)."""
    classes = list(classes)
    partner = get_pairflip_partners(classes)
    rng = np.random.default_rng(seed)
    return _flip(
        samples,
        classes,
        rate=rate,
        seed=seed,
        rng=rng,
        target=lambda k, count: np.full(count, partner[k]),
        name="pairflip",
    )


def _flip(samples, classes, *, rate, seed, rng, target, name) -> NoisyDataset:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"noise rate must be in [0, 1); got {rate}")
    if len(classes) < 2:
        raise DatasetError(f"flipping labels needs at least 2 classes; the dataset has {classes}")
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[c] for c in samples["given_label"].astype(str)], dtype=np.int64)
    noisy_labels = labels.copy()
    for k in range(len(classes)):
        members = np.flatnonzero(labels == k)
        count = int(round(rate * len(members)))
        chosen = rng.choice(members, size=count, replace=False)
        noisy_labels[chosen] = target(k, count)
    names = np.array(classes, dtype=object)
    noisy = samples.copy()
    noisy["given_label"] = names[noisy_labels]
    votes = None
    if "votes" in samples.columns:
        votes = to_matrix(samples["votes"])
    truth = _truth(noisy, names[labels], votes=votes)
    return NoisyDataset(
        samples=noisy.reset_index(drop=True),
        truth=truth,
        classes=list(classes),
        protocol=_record(name, rate, seed, truth, left_out=0),
    )


def _truth(
    noisy: pd.DataFrame, true_names: np.ndarray, *, votes: np.ndarray | None
) -> pd.DataFrame:
    truth = pd.DataFrame(
        {
            "sample_id": noisy["sample_id"].astype(str).to_numpy(),
            "true_label": true_names,
            "given_label": noisy["given_label"].astype(str).to_numpy(),
        }
    )
    truth["true_label"] = truth["true_label"].astype(str)
    truth["is_noisy"] = truth["true_label"] != truth["given_label"]
    if votes is not None:
        truth["votes"] = list(votes.astype(np.float32))
    return truth


def _record(
    name: str, rate: float | None, seed: int, truth: pd.DataFrame, *, left_out: int
) -> dict:
    return {
        "name": name,
        "rate": rate,
        "seed": seed,
        "samples": len(truth),
        "noisy": int(truth["is_noisy"].sum()),
        "noise_rate": float(truth["is_noisy"].mean()) if len(truth) else 0.0,
        "left_out": left_out,
    }
