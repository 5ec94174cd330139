"""`torchrun --nproc_per_node 2 -m fercleaner score` on CPU (gloo) writes one complete scores file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from fercleaner.scoring import read_scores
from fercleaner.synth import write_synthetic_dataset
from fercleaner.training.distributed import shard_indices

TINY = [
    "backbone.name=test_resnet",
    "data.image_size=32",
    "train.batch_size=8",
    "train.epochs=1",
    "score.batch_size=16",
    "train.num_threads=1",
]


def test_shards_cover_every_index_with_equal_counts():
    indices = list(range(10))
    shards = [shard_indices(indices, rank=r, world_size=3) for r in range(3)]
    assert {len(s) for s in shards} == {4}
    assert sorted(set().union(*map(set, shards))) == indices


@pytest.mark.slow
def test_two_cpu_processes_write_one_complete_scores_file(tmp_path):
    faces = tmp_path / "faces"
    write_synthetic_dataset(faces, n=50, layout="imagefolder", seed=2, noise_rate=0.2, size=32)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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
        *TINY,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scores = read_scores(run / "scores.parquet")
    truth = pd.read_parquet(tmp_path / "faces.truth.parquet")
    assert sorted(scores.frame["sample_id"]) == sorted(truth["sample_id"])  # every sample, once
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2
    # both ranks trained: 50 samples -> 25 per rank, all of them stepped on
    assert info["training"][0]["images_trained"] == 50
    dynamics = pd.read_parquet(run / "dynamics.parquet")
    assert set(dynamics["sample_id"]) == set(truth["sample_id"])
    assert list(run.glob("scores*")) == [run / "scores.parquet"]
