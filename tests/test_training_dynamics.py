"""The `dynamics` scoring source: late-epoch margins re-rank suspects and change nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fercleaner.scoring import assemble_scores
from fercleaner.training.dynamics import (
    DynamicsAccumulator,
    get_dynamics_readout,
    get_late_epochs,
)

CLASSES = ["neutral", "happiness", "surprise"]


def _accumulator(margins: np.ndarray) -> DynamicsAccumulator:
    """An accumulator whose per-epoch margins are `margins` (epochs, N), fed through `record`."""
    epochs, n = margins.shape
    dynamics = DynamicsAccumulator(epochs, n)
    given = torch.zeros(n, dtype=torch.long)
    for epoch in range(epochs):
        seen = np.isfinite(margins[epoch])
        # logits whose softmax gives class 0 (the given label) a margin of `m` (|m| <= 0.7)
        # over class 1, the runner-up while class 2 keeps 0.1
        m = torch.tensor(margins[epoch][seen], dtype=torch.float64)
        p0, p1 = (0.9 + m) / 2, (0.9 - m) / 2
        probs = torch.stack([p0, p1, torch.full_like(m, 0.1)], dim=1)
        index = torch.from_numpy(np.flatnonzero(seen))
        dynamics.record(epoch, index, probs.log(), given[index])
        dynamics.finish_epoch(epoch, reduce=lambda a: a)
    return dynamics


def test_late_epochs_are_the_second_half_of_those_recorded():
    assert get_late_epochs(np.ones((30, 2))) == slice(15, 30)
    assert get_late_epochs(np.ones((5, 2))) == slice(2, 5)
    assert get_late_epochs(np.ones((1, 2))) == slice(0, 1)
    resumed = np.full((6, 2), np.nan)
    resumed[2:] = 1.0  # only epochs 2..5 hold values
    assert get_late_epochs(resumed) == slice(4, 6)


def test_signal_is_the_late_mean_margin_and_unseen_samples_fall_back():
    # sample 0 is learned early and stays learned; sample 1 is learned only late
    # (memorised); sample 2 is never trained on
    margins = np.array(
        [
            [0.2, -0.8, np.nan],
            [0.6, -0.6, np.nan],
            [0.6, 0.2, np.nan],
            [0.6, 0.6, np.nan],
        ]
    )
    fallback = np.array([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    readout = get_dynamics_readout(
        _accumulator(margins), labels=np.array([0, 1, 0]), fallback_probs=fallback
    )
    late = np.array([0.6, 0.4, 0.1 - 0.6])  # epochs 2-3; sample 2: p[given] - max other
    np.testing.assert_allclose(readout["margin_late"][:2], late[:2], atol=1e-5)
    np.testing.assert_allclose(readout["label_quality_signal"], (1 + late) / 2, atol=1e-5)
    np.testing.assert_allclose(readout["margin_mean"][:2], [0.5, -0.15], atol=1e-5)
    assert np.isnan(readout["margin_late"][2])
    # a ranking signal only: nothing that would blend into predictions or soft labels
    assert not {"pred_probs", "soft_label", "uncertainty"} & set(readout)


def test_dynamics_source_reorders_label_quality_but_keeps_predictions():
    rng = np.random.default_rng(0)
    n = 40
    probs = rng.dirichlet(np.ones(3), size=n)
    given = rng.integers(0, 3, n)
    samples = pd.DataFrame(
        {
            "sample_id": [f"s{i}.png" for i in range(n)],
            "split": "train",
            "given_label": [CLASSES[g] for g in given],
            "path": [f"s{i}.png" for i in range(n)],
        }
    )
    method = {
        "pred_probs": probs,
        "soft_label": probs,
        "uncertainty": rng.random(n),
        "label_quality_signal": probs[np.arange(n), given],
    }
    margins = rng.uniform(-0.7, 0.7, (4, n))
    dynamics = get_dynamics_readout(_accumulator(margins), labels=given, fallback_probs=probs)
    alone = assemble_scores(samples, CLASSES, {"baseline": method}, method_name="baseline")
    both = assemble_scores(
        samples, CLASSES, {"baseline": method, "dynamics": dynamics}, method_name="baseline"
    )
    for column in ("predicted_label", "proposed_label", "is_label_issue", "uncertainty"):
        assert both[column].tolist() == alone[column].tolist()
    np.testing.assert_allclose(np.stack(both["soft_label"]), np.stack(alone["soft_label"]))
    assert not np.allclose(both["label_quality"], alone["label_quality"])
    # the order is the mean of the two sources' percentile ranks
    rank = lambda v: (np.argsort(np.argsort(v)) + 0.5) / n  # noqa: E731
    expected = rank(method["label_quality_signal"]) + rank(dynamics["label_quality_signal"])
    assert (
        np.argsort(np.asarray(both["label_quality"]), kind="stable").tolist()
        == np.argsort(expected, kind="stable").tolist()
    )
