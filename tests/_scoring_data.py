"""Score arrays with planted label errors for the scoring tests (cleanlab's test_rank make_data)."""

from __future__ import annotations

import numpy as np


def make_data(
    *, n: int = 600, num_classes: int = 4, flip_rate: float = 0.2, seed: int = 0
) -> dict[str, np.ndarray]:
    """True and given labels (`flip_rate` planted flips) and probabilities that follow the truth.

    The model sees the true class (logit +3 plus Gaussian noise), as an out-of-sample
    model trained on mostly-clean data would.
    """
    rng = np.random.default_rng(seed)
    true = np.arange(n) % num_classes
    rng.shuffle(true)
    given = true.copy()
    flipped = rng.random(n) < flip_rate
    shift = rng.integers(1, num_classes, size=n)
    given[flipped] = (true[flipped] + shift[flipped]) % num_classes
    logits = rng.normal(0.0, 1.0, size=(n, num_classes))
    logits[np.arange(n), true] += 3.0
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return {"true": true, "given": given, "pred_probs": probs, "is_noisy": given != true}
