"""Prototype-similarity relabeling (used by MTAC): EMA class prototypes and the relabel rule.

Reconstruction after ULC-AG's template relabeling and SCN's relabel rule (MTAC's method
section is not public): class prototypes are EMAs of L2-normalised features of
high-confidence samples; a low-confidence sample is moved to another class only when the
feature evidence (prototype similarity beats its own label's by more than a margin) and
the classifier (its argmax) agree, so neither a drifting prototype nor an overconfident
head can relabel on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def update_prototypes(
    prototypes: torch.Tensor,
    valid: torch.Tensor,
    feature_sums: torch.Tensor,
    counts: torch.Tensor,
    *,
    momentum: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One EMA step of class prototypes from this epoch's per-class feature sums.

    new_c = normalise(momentum * old_c + (1 - momentum) * normalise(sum_c / count_c)) for
    a class seen this epoch that already had a prototype; normalise(sum_c / count_c) for a
    class seen for the first time; unchanged for a class not seen.

    Args:
        prototypes: (C, D) unit vectors (rows of never-seen classes are ignored).
        valid: (C,) bool, which rows of `prototypes` hold a prototype.
        feature_sums: (C, D) sum of L2-normalised features per class this epoch.
        counts: (C,) number of features summed per class.
        momentum: weight of the old prototype in [0, 1).

    Returns:
        (new prototypes (C, D), new valid mask (C,)).
    """
    seen = counts > 0
    mean = feature_sums / counts.clamp(min=1).unsqueeze(1).to(feature_sums.dtype)
    mean = torch.nn.functional.normalize(mean, dim=1)
    blended = torch.where(
        (valid & seen).unsqueeze(1), momentum * prototypes + (1.0 - momentum) * mean, mean
    )
    new = torch.where(seen.unsqueeze(1), torch.nn.functional.normalize(blended, dim=1), prototypes)
    return new, valid | seen


def center_similarities(
    similarities: torch.Tensor, labels: torch.Tensor, *, rows: torch.Tensor
) -> torch.Tensor:
    """Each class's similarity minus its typical member's: sims[:, c] - median_{y_i = c} sims[i, c].

    Why: a visually tight class (surprise: open mouth, raised brows) has a prototype its
    members sit close to, while a diffuse class (neutral) has members far from its mean
    direction, so raw cosine similarities favour tight classes. Measured on FERPlus with
    real annotator noise: raw similarities sent 183 of 235 relabels to surprise, 11%
    of them to the majority label. Centering compares each class on its own scale.

    Args:
        similarities: (N, C) cosine similarities to the class prototypes.
        labels: (N,) long current labels (negative = unknown).
        rows: (N,) bool, rows whose labels and similarities define the medians.

    Returns:
        (N, C) centred similarities; a class with no member rows is left uncentred.
    """
    offsets = torch.zeros(
        similarities.shape[1], dtype=similarities.dtype, device=similarities.device
    )
    for c in range(similarities.shape[1]):
        members = rows & (labels == c)
        if bool(members.any()):
            offsets[c] = similarities[members, c].median()
    return similarities - offsets.unsqueeze(0)


@dataclass(frozen=True)
class RelabelProposal:
    """Which samples the rule relabels, to what, and by how much feature evidence."""

    mask: torch.Tensor
    """(N,) bool: relabel this sample."""
    target: torch.Tensor
    """(N,) long: best-prototype class (meaningful where `mask`)."""
    margin: torch.Tensor
    """(N,) float: best prototype similarity minus own label's (NaN where not computable)."""
    low_confidence: torch.Tensor
    """(N,) bool: the sample is in the low-confidence group."""


def propose_relabels(
    *,
    confidence: torch.Tensor,
    similarities: torch.Tensor,
    classifier_argmax: torch.Tensor,
    labels: torch.Tensor,
    seen: torch.Tensor,
    prototype_valid: torch.Tensor,
    high_ratio: float,
    margin: float,
) -> RelabelProposal:
    """Apply the relabel rule to every sample seen this epoch.

    Pass `center_similarities` output as `similarities` so classes are compared on their
    own scale. A sample is relabeled when all hold: it is low-confidence (its confidence is
    below the `1 - high_ratio` quantile of the seen samples' confidences, i.e. outside the
    "high" group the rank regulariser uses); its best valid prototype c* differs from its
    label y; sim(c*) - sim(y) > `margin`; and the classifier's argmax is c* too.

    Args:
        confidence: (N,) mean confidence a_i this epoch.
        similarities: (N, C) mean cosine similarity to each class prototype.
        classifier_argmax: (N,) long, argmax of the mean logits this epoch.
        labels: (N,) long current training labels (negative = unknown).
        seen: (N,) bool, the sample was trained on this epoch.
        prototype_valid: (C,) bool, classes that have a prototype.
        high_ratio: fraction of samples counted as high-confidence.
        margin: delta_2, required similarity advantage.
    """
    n = confidence.shape[0]
    usable = seen & (labels >= 0)
    low = torch.zeros(n, dtype=torch.bool, device=confidence.device)
    if bool(usable.any()):
        cut = torch.quantile(confidence[usable].float(), 1.0 - high_ratio)
        low = usable & (confidence < cut)
    masked = similarities.masked_fill(~prototype_valid.unsqueeze(0), float("-inf"))
    best_sim, target = masked.max(dim=1)
    safe_labels = labels.clamp(min=0)
    own_sim = masked.gather(1, safe_labels.unsqueeze(1)).squeeze(1)
    gap = best_sim - own_sim
    finite = usable & torch.isfinite(gap)
    gap = torch.where(finite, gap, torch.full_like(gap, float("nan")))
    mask = low & finite & (target != labels) & (gap > margin) & (classifier_argmax == target)
    return RelabelProposal(mask=mask, target=target, margin=gap, low_confidence=low)
