"""The plain reference: it learns, it is deterministic, its folds never see their own samples."""

from __future__ import annotations

import numpy as np
import pytest

from fercleaner.bench.plain_reference import PlainRecipe, get_plain_probs
from fercleaner.bench.references import get_plain_scores, reference_cache_key

#: A cheap variant of the protocol: only the budget differs from the reference's.
TINY = PlainRecipe(epochs=4, batch_size=16, image_size=16)


def _bars(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two learnable classes of 16 px grey images: a bright top half or a bright bottom half."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 60, (n, 16, 16, 1), dtype=np.uint8)
    for i, label in enumerate(labels):
        half = slice(0, 8) if label == 0 else slice(8, 16)
        images[i, half] += 150
    return images, labels


def test_in_sample_model_learns_the_labels_and_repeats_exactly():
    images, labels = _bars()
    probs = get_plain_probs(images, labels, num_classes=2, recipe=TINY, seed=0)
    assert probs.shape == (64, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == labels).mean() > 0.9
    again = get_plain_probs(images, labels, num_classes=2, recipe=TINY, seed=0)
    np.testing.assert_allclose(again, probs, atol=1e-6)


def test_out_of_fold_probabilities_come_from_models_that_never_saw_the_sample():
    images, labels = _bars()
    # flip one label: in-sample training can memorise it, held-out folds cannot
    noisy = labels.copy()
    noisy[5] = 1 - noisy[5]
    oof = get_plain_probs(images, noisy, num_classes=2, recipe=TINY, folds=4, seed=0)
    assert oof.shape == (64, 2) and np.allclose(oof.sum(axis=1), 1.0, atol=1e-5)
    assert oof[5, labels[5]] > 0.5  # its fold's model predicts the true class, not the flip


def test_plain_scores_flag_where_the_argmax_leaves_the_given_label():
    probs = np.array([[0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    scores = get_plain_scores(
        "plain_ce", np.array(["a", "b", "c"]), np.array([0, 0, 1]), probs, ["x", "y"]
    )
    np.testing.assert_allclose(scores.label_quality, [0.7, 0.4, 0.8])
    assert scores.is_label_issue.tolist() == [False, True, False]
    assert scores.proposed_label.tolist() == ["x", "y", "y"]
    assert scores.uncertainty[0] == pytest.approx(0.8813, abs=1e-3)  # H(0.7, 0.3) / log 2


def test_cache_key_changes_with_labels_seed_folds_recipe_and_pixels_only(tmp_path):
    import pandas as pd

    from fercleaner.bench.references import get_images_digest

    truth = pd.DataFrame({"sample_id": ["a.png", "b.png"], "given_label": ["x", "y"]})
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"pixels of " + name.encode())
    images = get_images_digest(tmp_path, ["b.png", "a.png"])
    assert images == get_images_digest(tmp_path, ["a.png", "b.png"])

    def key(table=truth, folds=1, recipe=None, seed=0, images=images):
        recipe = recipe or PlainRecipe()
        return reference_cache_key(table, folds=folds, recipe=recipe, seed=seed, images=images)

    assert key() == key(table=truth.iloc[::-1])
    (tmp_path / "b.png").write_bytes(b"re-rendered")
    others = [
        key(table=truth.assign(given_label=["y", "y"])),
        key(folds=5),
        key(seed=1),
        key(recipe=PlainRecipe(epochs=10)),
        key(images=get_images_digest(tmp_path, ["a.png", "b.png"])),
    ]
    assert len({key(), *others}) == 6
