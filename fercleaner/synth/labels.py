"""Label-side ground truth for synthetic faces: soft labels, planted label noise, annotator votes.

Pure functions on integer class indices and arrays; nothing here draws pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fercleaner.classes import get_pairflip_partners
from fercleaner.errors import ConfigError

NOISE_KINDS: tuple[str, ...] = ("symmetric", "pairflip")


def get_soft_labels(
    clean: np.ndarray, partner: np.ndarray, weight: np.ndarray, *, n_classes: int
) -> np.ndarray:
    """Soft labels (N, C) float32: `1 - weight` on `clean`, `weight` on `partner`.

    A face that is not ambiguous has `weight == 0` and a one-hot soft label. Rows sum to 1.
    """
    soft = np.zeros((len(clean), n_classes), dtype=np.float32)
    rows = np.arange(len(clean))
    soft[rows, clean] = 1.0 - weight
    soft[rows, partner] += weight
    return soft


def inject_label_noise(
    clean: np.ndarray,
    *,
    rate: float,
    kind: str,
    classes: Sequence[str],
    rng: np.random.Generator,
) -> np.ndarray:
    """Return given labels with exactly `round(rate * N)` entries changed to another class.

    Args:
        clean: (N,) int class indices into `classes`.
        rate: fraction of samples to corrupt, in [0, 1).
        kind: `symmetric` (uniform over the other classes) or `pairflip` (each class to
            its confusable partner, `classes.get_pairflip_partners`, as `fercleaner bench`
            flips them).
        classes: canonical class names the indices refer to.
        rng: the only source of randomness.

    Returns:
        (N,) int given labels; `given != clean` marks exactly the planted errors.
    """
    check_noise(rate=rate, kind=kind, n_classes=len(classes))
    n = len(clean)
    given = clean.copy()
    n_noisy = int(round(rate * n))
    if n_noisy == 0:
        return given
    picked = rng.choice(n, size=n_noisy, replace=False)
    if kind == "pairflip":
        given[picked] = np.asarray(get_pairflip_partners(classes))[clean[picked]]
        return given
    # symmetric: shift by 1..C-1, never back to the clean class
    shift = rng.integers(1, len(classes), size=n_noisy)
    given[picked] = (clean[picked] + shift) % len(classes)
    return given


def check_noise(*, rate: float, kind: str, n_classes: int) -> None:
    """Validate noise options, naming the bad value."""
    if kind not in NOISE_KINDS:
        raise ConfigError(f"noise kind {kind!r} is not one of {', '.join(NOISE_KINDS)}")
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"noise rate {rate} must be in [0, 1), e.g. 0.2 for 20% wrong labels")
    if rate > 0 and n_classes < 2:
        raise ConfigError("label noise needs at least 2 classes")


def simulate_votes(
    soft: np.ndarray,
    *,
    rng: np.random.Generator,
    n_votes: int = 10,
    slip: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Crowd votes drawn from each face's soft label, FERPlus style.

    Each of `n_votes` annotators votes from the soft label; with probability `slip`
    an annotator slips and votes uniformly over the classes or `unknown`.

    Returns:
        votes (N, C) int32 over the soft label's classes, and unknown (N,) int32.
    """
    n, c = soft.shape
    probs = np.concatenate(
        [(1.0 - slip) * soft + slip / (c + 1), np.full((n, 1), slip / (c + 1))], 1
    )
    probs /= probs.sum(1, keepdims=True)
    # vectorised multinomial: inverse-CDF sampling of n_votes uniforms per row
    cdf = np.cumsum(probs, axis=1)
    draws = rng.random((n, n_votes))
    picks = (draws[:, :, None] > cdf[:, None, :]).sum(2)  # (N, V) category per vote
    picks = np.minimum(picks, c)
    counts = np.zeros((n, c + 1), dtype=np.int32)
    np.add.at(counts, (np.repeat(np.arange(n), n_votes), picks.ravel()), 1)
    return counts[:, :c], counts[:, c]


def force_plurality(votes: np.ndarray, unknown: np.ndarray, given: np.ndarray) -> None:
    """Move votes in place until `given` is the strict plurality over all columns.

    Used for layouts whose given label *is* the plurality vote (FERPlus): a planted
    error becomes a crowd that agreed on the wrong class. Each step takes one vote
    from the strongest competitor (or `unknown`), so the total stays the same.
    """
    rows = np.arange(len(given))
    while True:
        own = votes[rows, given]
        others = votes.copy()
        others[rows, given] = -1
        best_other = others.max(1)
        need = (own <= best_other) | (own <= unknown)
        if not need.any():
            return
        idx = rows[need]
        from_unknown = unknown[idx] >= best_other[idx]
        take_u = idx[from_unknown]
        unknown[take_u] -= 1
        votes[take_u, given[take_u]] += 1
        take_c = idx[~from_unknown]
        donors = others[take_c].argmax(1)
        votes[take_c, donors] -= 1
        votes[take_c, given[take_c]] += 1
