"""MTAC in the real trainer: relabels reach training; resume after a kill matches a straight run."""

from __future__ import annotations

import numpy as np
import pytest

from fercleaner.config import load_recipe
from fercleaner.training.trainer import TrainData, train_and_score

CLASSES = ("neutral", "happiness", "surprise", "sadness")
TINY = [
    "backbone.name=test_resnet",
    "data.image_size=32",
    "train.batch_size=16",
    "train.epochs=3",
    "train.lr=0.01",
    "score.batch_size=64",
    "train.warmup_epochs=0.5",
    "train.num_threads=1",
    "method.name=mtac",
    # relabel from the first epoch on (default margin 0.2), so this tiny run does relabel
    "method.options.relabel_warmup=1",
]


def _data(n: int = 96, size: int = 32) -> TrainData:
    """Brightness encodes the class; every 8th label is flipped to the next class."""
    rng = np.random.default_rng(0)
    clean = np.arange(n) % len(CLASSES)
    images = rng.integers(0, 50, (n, size, size, 1)) + clean[:, None, None, None] * 60
    given = clean.copy()
    given[::8] = (given[::8] + 1) % len(CLASSES)
    return TrainData(
        images=images.astype(np.uint8),
        rows=np.arange(n),
        labels=given,
        train_mask=np.ones(n, dtype=bool),
        classes=CLASSES,
        sample_ids=np.array([f"img{i:03d}.png" for i in range(n)]),
    )


class _Stop(Exception):
    pass


def test_mtac_resume_after_kill_matches_a_straight_run(tmp_path):
    data = _data()
    recipe = load_recipe("quick", overrides=TINY)
    straight = train_and_score(data, recipe, method_name="mtac", run_dir=tmp_path / "a")
    assert len(straight.events) > 0, "the tiny run should relabel something"
    assert {"sample_id", "epoch", "from_class", "to_class"} <= set(straight.events.columns)
    assert np.isfinite(straight.dynamics_table()["confidence"]).all()  # forward's (B,) confidence
    # relabels hit the planted flips (every 8th sample) and mostly restore the clean class
    assert set(straight.events["index"]) <= set(range(0, 96, 8))
    relabeled = np.flatnonzero(straight.readout["relabeled_at"] >= 0)
    clean = relabeled % len(CLASSES)
    assert np.mean(straight.readout["relabel_to"][relabeled] == clean) >= 0.75  # measured: 10/10

    def kill_after_second_epoch(p):
        if p.epoch_done and p.epoch == 1:
            raise _Stop

    with pytest.raises(_Stop):
        train_and_score(
            data,
            recipe,
            method_name="mtac",
            run_dir=tmp_path / "b",
            progress=kill_after_second_epoch,
        )
    resumed = train_and_score(data, recipe, method_name="mtac", run_dir=tmp_path / "b", resume=True)
    for key in ("pred_probs", "label_quality_signal", "relabeled_at", "relabel_to"):
        np.testing.assert_allclose(resumed.readout[key], straight.readout[key], atol=1e-5)
    columns = ["sample_id", "epoch", "from_label", "to_label"]
    assert resumed.events[columns].equals(straight.events[columns])


@pytest.mark.slow
def test_mtac_under_torchrun_two_cpu_processes(tmp_path):
    """Real 2-rank gloo DDP: one scores file, relabel history and events agree, no duplicates."""
    import os
    import subprocess
    import sys

    import pandas as pd

    from fercleaner.synth import write_synthetic_dataset

    faces = tmp_path / "faces"
    write_synthetic_dataset(faces, n=64, layout="imagefolder", seed=2, noise_rate=0.2, size=32)
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "fercleaner",
        "score",
        str(faces),
        "--out",
        str(run),
        "--recipe",
        "quick",
        "--method",
        "mtac",
        "backbone.name=test_resnet",
        "data.image_size=32",
        "train.batch_size=8",
        "train.epochs=3",
        "score.batch_size=16",
        "train.num_threads=1",
        "method.options.relabel_warmup=1",
        "method.options.relabel_margin=0.0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scores = pd.read_parquet(run / "scores.parquet")
    assert len(scores) == 64 and scores["sample_id"].is_unique
    events = pd.read_parquet(run / "events.parquet")
    assert len(events) > 0 and not events.duplicated(["sample_id", "epoch"]).any()
    relabeled = set(scores.loc[scores["mtac_relabeled_at"] >= 0, "sample_id"])
    assert relabeled == set(events["sample_id"])
