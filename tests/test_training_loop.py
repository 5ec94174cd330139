"""Trainer: precision paths, checkpoints, exact resume, cross-fitting, relabel hooks, dynamics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from fercleaner.config import load_recipe
from fercleaner.errors import CheckpointError, TrainingDivergedError
from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.registry import register_method
from fercleaner.training.checkpoint import load_checkpoint, save_checkpoint
from fercleaner.training.device import cpu_supports_bf16, resolve_precision
from fercleaner.training.trainer import TrainData, train_and_score

CLASSES = ("neutral", "happiness", "surprise", "sadness")
TINY = [
    "backbone.name=test_resnet",
    "data.image_size=32",
    "train.batch_size=16",
    "train.epochs=2",
    "score.batch_size=32",
    "train.warmup_epochs=0.5",
    "train.num_threads=1",
]


def _data(n: int = 64, size: int = 32) -> TrainData:
    """Images whose mean brightness encodes the label, so a model can learn something."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % len(CLASSES)
    images = rng.integers(0, 60, (n, size, size, 1)) + labels[:, None, None, None] * 60
    return TrainData(
        images=images.astype(np.uint8),
        rows=np.arange(n)[::-1].copy(),  # rows need not follow sample order
        labels=labels[::-1].copy(),
        train_mask=np.ones(n, dtype=bool),
        classes=CLASSES,
        sample_ids=np.array([f"img{i:03d}.png" for i in range(n)]),
    )


def test_precision_resolution_and_autocast():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu).autocast_dtype is None
    bf16 = resolve_precision("bf16", cpu)
    with bf16.autocast():
        out = torch.nn.Linear(4, 2)(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    assert resolve_precision("auto", cpu).name == ("bf16" if cpu_supports_bf16() else "fp32")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_and_score_contract(tmp_path, precision):
    data = _data()
    recipe = load_recipe(
        "quick", overrides=[*TINY, f"train.precision={precision}", "train.epochs=1"]
    )
    result = train_and_score(data, recipe, method_name="baseline", run_dir=tmp_path)
    assert result.precision == precision
    n = len(data.labels)
    probs = result.readout["pred_probs"]
    assert probs.shape == (n, 4) and np.isfinite(probs).all()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    dyn = result.dynamics_readout
    assert (
        dyn["label_quality_signal"].shape == (n,) and np.isfinite(dyn["label_quality_signal"]).all()
    )
    # one row per sample per epoch, given_prob equal to the mean the readout reports
    table = result.dynamics_table()
    assert len(table) == n and set(table["sample_id"]) == set(data.sample_ids)
    assert (tmp_path / "checkpoints" / "baseline" / "fold0.pt").is_file()


def test_checkpoint_round_trip_and_mismatch(tmp_path):
    path = tmp_path / "c.pt"
    state = {"recipe": {"train": {"epochs": 2}}, "model": {"w": torch.arange(3.0)}, "epoch": 1}
    save_checkpoint(path, state)
    loaded = load_checkpoint(path, expect={"recipe": {"train": {"epochs": 2}}})
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0)) and loaded["epoch"] == 1
    with pytest.raises(CheckpointError, match=r"train.epochs \(2 vs 3\)"):
        load_checkpoint(path, expect={"recipe": {"train": {"epochs": 3}}})
    (tmp_path / "torn.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "torn.pt")


def test_a_checkpoint_that_stored_the_whole_recipe_still_resumes(tmp_path):
    """Written before the score section became resumable: its recipe has every key."""
    from fercleaner.config import recipe_to_dict
    from fercleaner.training.checkpoint import get_checkpoint_recipe

    recipe = load_recipe("quick", overrides=TINY)
    path = tmp_path / "old.pt"
    save_checkpoint(path, {"recipe": recipe_to_dict(recipe), "epoch": 0})
    other_readout = load_recipe("quick", overrides=[*TINY, "score.batch_size=7"])
    assert load_checkpoint(path, expect={"recipe": get_checkpoint_recipe(other_readout)})
    other_lr = load_recipe("quick", overrides=[*TINY, "train.lr=0.5"])
    with pytest.raises(CheckpointError, match="train.lr"):
        load_checkpoint(path, expect={"recipe": get_checkpoint_recipe(other_lr)})


class _Stop(Exception):
    pass


def test_resume_after_kill_gives_the_same_scores(tmp_path):
    data = _data()
    recipe = load_recipe("quick", overrides=[*TINY, "train.augment.erase_prob=0.3"])
    straight = train_and_score(data, recipe, method_name="baseline", run_dir=tmp_path / "a")

    def kill_after_first_epoch(p):
        if p.epoch_done and p.epoch == 0:
            raise _Stop

    with pytest.raises(_Stop):
        train_and_score(
            data,
            recipe,
            method_name="baseline",
            run_dir=tmp_path / "b",
            progress=kill_after_first_epoch,
        )
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "baseline" / "fold0.pt")["epoch"] == 0
    resumed = train_and_score(
        data, recipe, method_name="baseline", run_dir=tmp_path / "b", resume=True
    )
    for key in ("pred_probs", "label_quality_signal"):
        np.testing.assert_allclose(resumed.readout[key], straight.readout[key], atol=1e-5)
    for key in ("label_quality_signal", "margin_late"):
        np.testing.assert_allclose(
            resumed.dynamics_readout[key], straight.dynamics_readout[key], atol=1e-5
        )
    # the dynamics live beside the checkpoint, one file per epoch; the checkpoint names them
    folder = tmp_path / "b" / "checkpoints" / "baseline" / "fold0.dynamics"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch0000.npy", "epoch0001.npy"]
    saved = load_checkpoint(tmp_path / "b" / "checkpoints" / "baseline" / "fold0.pt")
    assert saved["dynamics"]["epochs"].tolist() == [0, 1] and "values" not in saved["dynamics"]
    pd.testing.assert_frame_equal(
        resumed.dynamics_table(), straight.dynamics_table(), check_exact=False, atol=1e-5
    )

    other = load_recipe("quick", overrides=[*TINY, "train.augment.erase_prob=0.3", "train.lr=0.1"])
    with pytest.raises(CheckpointError, match="train.lr"):
        train_and_score(data, other, method_name="baseline", run_dir=tmp_path / "b", resume=True)
    # how the model is read out or how many threads train it never change the weights
    readout = ["score.batch_size=7", "score.tta_flip=false", "train.num_threads=2"]
    smaller = load_recipe("quick", overrides=[*TINY, "train.augment.erase_prob=0.3", *readout])
    again = train_and_score(
        data, smaller, method_name="baseline", run_dir=tmp_path / "b", resume=True
    )
    assert again.images_trained == 0  # every epoch came from the checkpoints


def test_a_new_run_in_an_old_runs_folder_reads_only_its_own_epochs(tmp_path):
    data = _data()
    longer = load_recipe("quick", overrides=[*TINY, "train.epochs=3"])
    train_and_score(data, longer, method_name="baseline", run_dir=tmp_path)
    shorter = load_recipe("quick", overrides=[*TINY, "train.epochs=1"])
    result = train_and_score(data, shorter, method_name="baseline", run_dir=tmp_path)
    assert result.dynamics_table()["epoch"].unique().tolist() == [0]
    folder = tmp_path / "checkpoints" / "baseline" / "fold0.dynamics"
    assert [p.name for p in folder.iterdir()] == ["epoch0000.npy"]

    # a fresh run killed in its first epoch leaves nothing of the earlier run to resume
    train_and_score(data, longer, method_name="baseline", run_dir=tmp_path / "b")

    def kill_in_first_epoch(p):
        if p.phase == "train" and p.epoch == 0:
            raise _Stop

    with pytest.raises(_Stop):
        train_and_score(
            data,
            longer,
            method_name="baseline",
            run_dir=tmp_path / "b",
            progress=kill_in_first_epoch,
        )
    assert not (tmp_path / "b" / "checkpoints" / "baseline" / "fold0.pt").exists()
    resumed = train_and_score(
        data, longer, method_name="baseline", run_dir=tmp_path / "b", resume=True
    )
    assert resumed.dynamics_table()["epoch"].unique().tolist() == [0, 1, 2]


def test_cross_fitting_never_predicts_a_training_sample(tmp_path):
    data = _data()
    recipe = load_recipe("quick", overrides=[*TINY, "train.folds=2", "train.epochs=1"])
    result = train_and_score(data, recipe, method_name="baseline", run_dir=None)
    assert result.dynamics_readout is None  # in-sample dynamics would leak
    table = result.dynamics_table()
    folds_per_sample = table.groupby("sample_id")["fold"].nunique()
    assert len(folds_per_sample) == len(data.labels) and (folds_per_sample == 1).all()
    # stratified: each fold leaves out half of every class
    held_out = 1 - table.drop_duplicates("sample_id").set_index("sample_id")["fold"]
    by_class = held_out.groupby(data.labels[np.argsort(data.sample_ids)]).mean()
    assert np.allclose(by_class, 0.5)
    assert result.readout["pred_probs"].shape == (len(data.labels), 4)


@pytest.fixture
def registered():
    """Register throw-away methods for one test, then remove them from the registry."""
    from fercleaner.methods import registry

    names = []

    def add(name, cls):
        register_method(name)(cls)
        names.append(name)

    yield add
    for name in names:
        registry._METHODS.pop(name, None)


class _RelabelProbe(Method):
    """Trains on label 0 for every sample after epoch 0 and records what the trainer fed it."""

    def __init__(self, context: MethodContext) -> None:
        super().__init__(context)
        self.head = torch.nn.Linear(context.in_chans, self.num_classes)
        self.seen: dict[int, set[int]] = {}
        self.epoch = 0

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.head(batch.images.mean(dim=(2, 3)))
        self.seen.setdefault(self.epoch, set()).update(batch.labels.tolist())
        conf = torch.full((len(batch.labels),), 0.25)
        return {"loss": F.cross_entropy(logits, batch.labels), "logits": logits, "confidence": conf}

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"probs": F.softmax(self.head(images.mean(dim=(2, 3))).float(), dim=1)}

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def training_labels(self) -> torch.Tensor | None:
        return None if self.epoch == 0 else torch.zeros(self.context.num_samples, dtype=torch.long)

    def events(self):
        return [{"index": 3, "epoch": 1, "from_label": "sadness", "to_label": "neutral"}]


def test_training_labels_events_and_method_confidence(tmp_path, registered):
    registered("test_relabel_probe", _RelabelProbe)
    data = _data()
    recipe = load_recipe("quick", overrides=[*TINY, "train.channels_last=false"])
    result = train_and_score(data, recipe, method_name="test_relabel_probe", run_dir=tmp_path)
    assert result.events["sample_id"].tolist() == [data.sample_ids[3]]
    assert result.events["to_label"].tolist() == ["neutral"]
    assert np.allclose(result.dynamics_table()["confidence"], 0.25)
    assert np.allclose(result.dynamics_readout["confidence_mean"], 0.25)


def test_relabels_reach_the_batches(registered):
    seen = {}

    class Spy(_RelabelProbe):
        def on_epoch_end(self, epoch: int) -> None:
            seen.update(self.seen)

    registered("test_relabel_spy", Spy)
    recipe = load_recipe("quick", overrides=[*TINY, "train.channels_last=false"])
    train_and_score(_data(), recipe, method_name="test_relabel_spy")
    assert seen[0] == {0, 1, 2, 3} and seen[1] == {0}


def test_a_diverged_loss_stops_training_after_that_epoch_without_its_checkpoint(
    tmp_path, registered
):
    class Diverges(_RelabelProbe):
        def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
            out = super().forward(batch)
            if self.epoch == 1:  # the second epoch blows up
                out["loss"] = out["loss"] * float("nan")
            return out

    registered("test_diverges", Diverges)
    recipe = load_recipe("quick", overrides=[*TINY, "train.channels_last=false"])
    with pytest.raises(TrainingDivergedError, match="NaN or infinite in 4 steps of epoch 2"):
        train_and_score(_data(), recipe, method_name="test_diverges", run_dir=tmp_path)
    kept = load_checkpoint(tmp_path / "checkpoints" / "test_diverges" / "fold0.pt")
    assert kept["epoch"] == 0  # the diverged epoch's NaN weights were never saved


def test_no_batch_holds_a_single_image_whatever_the_count():
    from fercleaner.training.loop import get_steps

    for batch_size in range(2, 12):
        for count in range(2, 300):
            sizes = [len(b) for b in np.array_split(np.arange(count), get_steps(count, batch_size))]
            assert min(sizes) >= 2 and max(sizes) <= max(2 * batch_size, 3), (count, batch_size)
    assert get_steps(1000, 128) == 8 and get_steps(3, 2) == 1 and get_steps(7, 2) == 3


def test_with_a_grad_scaler_only_an_epoch_of_overflows_is_divergence(
    tmp_path, registered, monkeypatch
):
    """fp16's scaler skips an overflowing step and lowers its scale: that is not divergence."""

    overflow = torch.tensor(float("inf"))  # the loss value overflows, its gradient does not

    class OneOverflow(_RelabelProbe):
        steps = 0

        def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
            out = super().forward(batch)
            type(self).steps += 1
            if type(self).steps == 2:
                out["loss"] = out["loss"] + overflow
            return out

    class AllOverflow(_RelabelProbe):
        def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
            out = super().forward(batch)
            if self.epoch == 1:
                out["loss"] = out["loss"] + overflow
            return out

    monkeypatch.setattr(torch.amp.GradScaler, "is_enabled", lambda self: True)
    registered("test_one_overflow", OneOverflow)
    registered("test_all_overflow", AllOverflow)
    recipe = load_recipe("quick", overrides=[*TINY, "train.channels_last=false"])
    train_and_score(_data(), recipe, method_name="test_one_overflow", run_dir=tmp_path / "a")
    with pytest.raises(TrainingDivergedError, match="in 4 steps of epoch 2"):
        train_and_score(_data(), recipe, method_name="test_all_overflow", run_dir=tmp_path / "b")


def test_a_model_with_one_training_image_is_refused_before_it_trains(tmp_path):
    from fercleaner.errors import DatasetError

    data = _data(n=8)
    data = TrainData(
        images=data.images,
        rows=data.rows,
        labels=data.labels,
        train_mask=np.arange(8) == 0,  # one training image, the rest only scored
        classes=CLASSES,
        sample_ids=data.sample_ids,
    )
    recipe = load_recipe("quick", overrides=TINY)
    with pytest.raises(DatasetError, match="the model would train on 1 image"):
        train_and_score(data, recipe, method_name="baseline", run_dir=tmp_path)
