"""The `dynamics` scoring source: late-epoch margins re-rank suspects and change nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fercleaner.scoring import assemble_scores
from fercleaner.training.dynamics import (
    DynamicsAccumulator,
    DynamicsRecord,
    get_dynamics_readout,
    get_dynamics_table,
    get_late_epochs,
)

CLASSES = ["neutral", "happiness", "surprise"]


def _accumulator(margins: np.ndarray) -> DynamicsAccumulator:
    """An accumulator whose per-epoch margins are `margins` (epochs, N), fed through `record`.

    NaN = the sample was not trained on that epoch.
    """
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


def test_late_epochs_are_the_second_half():
    assert get_late_epochs(np.ones((30, 2))) == slice(15, 30)
    assert get_late_epochs(np.ones((5, 2))) == slice(2, 5)
    assert get_late_epochs(np.ones((1, 2))) == slice(0, 1)


def test_signal_is_the_late_mean_margin_and_unseen_samples_are_left_to_the_method():
    # sample 0 is learned early and stays learned; sample 1 is learned only late
    # (memorised); sample 2 is never trained on (outside data.splits)
    margins = np.array(
        [
            [0.2, -0.6, np.nan],
            [0.6, -0.6, np.nan],
            [0.6, 0.2, np.nan],
            [0.6, 0.6, np.nan],
        ]
    )
    readout = get_dynamics_readout(_accumulator(margins))
    np.testing.assert_allclose(readout["margin_late"][:2], [0.6, 0.4], atol=1e-5)
    np.testing.assert_allclose(readout["label_quality_signal"][:2], [0.8, 0.7], atol=1e-5)
    np.testing.assert_allclose(readout["margin_mean"][:2], [0.5, -0.1], atol=1e-5)
    assert np.isnan(readout["label_quality_signal"][2]) and np.isnan(readout["margin_late"][2])
    # a ranking signal only: nothing that would blend into predictions or soft labels
    assert not {"pred_probs", "soft_label", "uncertainty"} & set(readout)


def _samples(given: list[str]) -> pd.DataFrame:
    n = len(given)
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}.png" for i in range(n)],
            "split": "train",
            "given_label": given,
            "path": [f"s{i}.png" for i in range(n)],
        }
    )


def test_a_label_learned_only_late_ranks_as_more_suspect_and_nothing_else_changes():
    # four images given `neutral`; the final model trusts image 1 most, but it was
    # memorised (low margins through the late epochs) where images 0, 2 were learned
    # early; image 3 was never trained on, so only the model speaks for it
    probs = np.array([[0.80, 0.1, 0.1], [0.82, 0.08, 0.1], [0.79, 0.11, 0.1], [0.5, 0.4, 0.1]])
    labels = np.zeros(4, dtype=int)
    method = {
        "pred_probs": probs,
        "soft_label": probs,
        "uncertainty": np.array([0.1, 0.1, 0.1, 0.5]),
        "label_quality_signal": probs[np.arange(4), labels],
    }
    margins = np.array(
        [[0.5, -0.5, 0.4, np.nan]] * 2 + [[0.6, -0.3, 0.5, np.nan]] * 2 + [[0.7, 0.6, 0.7, np.nan]]
    )
    dynamics = get_dynamics_readout(_accumulator(margins))
    samples = _samples(["neutral"] * 4)
    alone = assemble_scores(
        samples, CLASSES, {"baseline": method}, method_name="baseline", flag_rule="argmax"
    )
    both = assemble_scores(
        samples,
        CLASSES,
        {"baseline": method, "dynamics": dynamics},
        method_name="baseline",
        flag_rule="argmax",
    )
    quality, model_only = both["label_quality"].to_numpy(), alone["label_quality"].to_numpy()
    assert model_only[1] > model_only[0]  # the model alone trusts the memorised label more
    assert quality[1] < quality[0]  # its training margins make it the suspect
    # the unseen image keeps the model's verdict: still the least trusted of the four
    assert quality[3] == quality.min()
    for column in ("predicted_label", "proposed_label", "is_label_issue", "uncertainty"):
        assert both[column].tolist() == alone[column].tolist()
    np.testing.assert_allclose(np.stack(both["soft_label"]), np.stack(alone["soft_label"]))


def test_the_long_table_comes_an_epoch_at_a_time_with_the_same_rows() -> None:
    nan = np.nan
    margins = np.array(
        [[0.1, nan, 0.3, nan], [nan, nan, nan, nan], [0.2, 0.4, nan, -0.1]], dtype=np.float64
    )
    dynamics = _accumulator(margins)
    ids = np.array(["a", "b", "c", "d"])
    record = DynamicsRecord(dynamics.per_epoch, ids, "poi", 2)
    parts = list(record.tables())
    assert [p["epoch"].unique().tolist() for p in parts] == [[0], [2]]  # epoch 1 trained none
    assert [p["sample_id"].tolist() for p in parts] == [["a", "c"], ["a", "b", "d"]]
    whole = get_dynamics_table(dynamics, sample_ids=ids, method="poi", fold=2)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert (whole["method"] == "poi").all() and (whole["fold"] == 2).all()
