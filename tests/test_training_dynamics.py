"""The `dynamics` scoring source: late-epoch margins re-rank suspects and change nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fercleaner.errors import CheckpointError
from fercleaner.scoring import assemble_scores
from fercleaner.training.dynamics import (
    DynamicsAccumulator,
    DynamicsRecord,
    EpochSignals,
    get_dynamics_readout,
    get_late_epochs,
)

CLASSES = ["neutral", "happiness", "surprise"]


def _accumulator(margins: np.ndarray, folder=None) -> DynamicsAccumulator:
    """An accumulator whose per-epoch margins are `margins` (epochs, N), fed through `record`.

    NaN = the sample was not trained on that epoch; `folder` keeps the epochs as files.
    """
    epochs, n = margins.shape
    dynamics = DynamicsAccumulator(n, EpochSignals(folder))
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
    record = DynamicsRecord(dynamics.signals, ids, "poi", 2)
    parts = [table.to_pandas() for table in record.arrow_tables()]
    assert [p["epoch"].unique().tolist() for p in parts] == [[0], [2]]  # epoch 1 trained none
    assert [p["sample_id"].tolist() for p in parts] == [["a", "c"], ["a", "b", "d"]]
    whole = record.table()
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert (whole["method"] == "poi").all() and (whole["fold"] == 2).all()


def test_epochs_kept_as_files_give_the_same_readout_and_table_as_in_memory(tmp_path) -> None:
    nan = np.nan
    margins = np.array(
        [[0.1, nan, 0.3, -0.2], [0.5, 0.2, nan, -0.4], [0.6, 0.4, 0.3, -0.1], [0.6, 0.5, 0.4, 0.0]]
    )
    in_memory = _accumulator(margins)
    on_disk = _accumulator(margins, folder=tmp_path / "fold0.dynamics")
    assert sorted(p.name for p in (tmp_path / "fold0.dynamics").iterdir()) == [
        f"epoch{e:04d}.npy" for e in range(4)
    ]
    for key, value in get_dynamics_readout(in_memory).items():
        np.testing.assert_array_equal(get_dynamics_readout(on_disk)[key], value, err_msg=key)
    ids = np.array(["a", "b", "c", "d"])
    pd.testing.assert_frame_equal(
        DynamicsRecord(on_disk.signals, ids, "mtac", 0).table(),
        DynamicsRecord(in_memory.signals, ids, "mtac", 0).table(),
    )
    # the readout is the old whole-array formula: std over the epochs each sample was seen
    given = np.stack([in_memory.signals.get(e)["given_prob"] for e in range(4)])
    np.testing.assert_allclose(
        get_dynamics_readout(on_disk)["given_prob_std"], np.nanstd(given, axis=0), rtol=1e-6
    )


def test_a_checkpoint_names_the_epoch_files_and_a_resume_drops_later_ones(tmp_path) -> None:
    folder = tmp_path / "fold0.dynamics"
    margins = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    dynamics = _accumulator(margins[:2], folder=folder)
    state = dynamics.state()
    assert state["epochs"].tolist() == [0, 1] and "values" not in state  # values stay on disk
    # epoch 2 finished and was written, but the kill came before its checkpoint
    _accumulator(margins, folder=folder)
    resumed = DynamicsAccumulator(2, EpochSignals(folder))
    resumed.load_state(state)
    assert resumed.signals.epochs() == [0, 1]
    (folder / "epoch0001.npy").unlink()
    with pytest.raises(CheckpointError, match=r"epoch\(s\) \[1\] are missing"):
        DynamicsAccumulator(2, EpochSignals(folder)).load_state(state)


def test_in_memory_epochs_go_into_the_checkpoint_and_come_back() -> None:
    dynamics = _accumulator(np.array([[0.1, np.nan], [0.3, 0.4]]))
    state = dynamics.state()
    assert state["values"].shape == (2, 4, 2)
    restored = DynamicsAccumulator(2, EpochSignals())
    restored.load_state(state)
    assert restored.signals.epochs() == [0, 1]
    for key, value in get_dynamics_readout(dynamics).items():
        np.testing.assert_array_equal(get_dynamics_readout(restored)[key], value, err_msg=key)


def test_a_rank_that_keeps_nothing_still_takes_part_in_the_reduction() -> None:
    reduced = []
    dynamics = DynamicsAccumulator(3, None)
    dynamics.record(0, torch.tensor([0, 2]), torch.zeros(2, 3), torch.tensor([0, 1]))
    dynamics.finish_epoch(0, reduce=lambda a: reduced.append(a.shape) or a)
    assert reduced == [(6, 3)] and dynamics.state()["epochs"].tolist() == []
