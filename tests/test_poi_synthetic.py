"""POI through the real trainer on synthetic faces with planted flips and true soft labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fercleaner.config import load_recipe
from fercleaner.synth import generate_faces
from fercleaner.training.trainer import TrainData, train_and_score

CLASSES = ("neutral", "happiness", "surprise", "anger")
TINY = [
    "backbone.name=test_resnet",
    "data.image_size=32",
    "train.batch_size=32",
    "train.epochs=10",
    "train.lr=0.004",
    "train.warmup_epochs=0.5",
    "train.num_threads=1",
]


def _faces(n: int, *, seed: int) -> tuple[TrainData, np.ndarray, np.ndarray, np.ndarray]:
    images, truth = generate_faces(
        n, seed=seed, size=32, classes=CLASSES, ambiguity_rate=0.3, noise_rate=0.2
    )
    index = {name: i for i, name in enumerate(CLASSES)}
    data = TrainData(
        images=images[..., None],
        rows=np.arange(n),
        labels=np.array([index[c] for c in truth["given_label"]]),
        train_mask=np.ones(n, dtype=bool),
        classes=CLASSES,
        sample_ids=np.array([f"face{i:04d}.png" for i in range(n)]),
    )
    clean = np.array([index[c] for c in truth["clean_label"]])
    soft = np.stack(truth["soft_label"].to_numpy()).astype(np.float64)
    return data, clean, truth["is_noisy"].to_numpy(dtype=bool), soft


def _kl(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean KL(truth || pred) over samples."""
    t = np.clip(truth, 1e-12, 1.0)
    p = np.clip(pred, 1e-12, 1.0)
    return float(np.mean((truth * (np.log(t) - np.log(p))).sum(axis=1)))


@pytest.mark.slow
def test_poi_learns_finds_flips_and_beats_the_baseline_soft_labels():
    """320 faces, 4 classes, 20% flips, 10 epochs of timm's test_resnet at 32 px, in-sample.

    Measured with these settings (generator seed 0 / 1): POI soft-label argmax accuracy vs
    the clean labels 0.57 / 0.55 (chance 0.25, baseline 0.53 / 0.47); AUROC of
    1 - label_quality_signal for the flips 0.76 / 0.80 (baseline 0.61 / 0.62);
    KL(true soft label || soft_label) 0.87 / 0.92 vs 0.98 / 1.03 for the baseline. At a
    larger budget (1,600 faces, ResNet-18, 10 epochs) the baseline wins instead, see
    fercleaner/methods/poi.py; this test pins the small-data regime. Bounds leave room for
    platform differences.
    """
    data, clean, noisy, soft = _faces(320, seed=0)
    poi = train_and_score(data, load_recipe("quick", overrides=TINY), method_name="poi").readout
    base = train_and_score(
        data, load_recipe("quick", overrides=TINY), method_name="baseline"
    ).readout

    assert (poi["soft_label"].argmax(1) == clean).mean() > 0.4  # chance is 0.25
    assert roc_auc_score(noisy, 1 - poi["label_quality_signal"]) > 0.65
    assert roc_auc_score(noisy, poi["uncertainty"]) > 0.65
    assert poi["suspect"][noisy].mean() > poi["suspect"][~noisy].mean()
    assert _kl(soft, poi["soft_label"]) < _kl(soft, base["soft_label"])
    np.testing.assert_allclose(poi["region_weights"].sum(axis=1), 1.0, atol=1e-3)
