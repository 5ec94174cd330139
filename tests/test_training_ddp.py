"""`torchrun --nproc_per_node 2 -m fercleaner score` on CPU (gloo) writes one whole scores file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from fercleaner.scoring import read_scores
from fercleaner.synth import write_synthetic_dataset
from fercleaner.training.distributed import all_reduce_tensor, get_process_rank, shard_indices

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


def test_all_reduce_tensor_without_a_process_group_leaves_the_tensor_alone():
    tensor = torch.tensor([1.0, -2.0])
    assert all_reduce_tensor(tensor) is tensor and tensor.tolist() == [1.0, -2.0]
    assert all_reduce_tensor(tensor, op="max").tolist() == [1.0, -2.0]
    assert get_process_rank() == 0
    with pytest.raises(ValueError, match=r"op must be one of \['max', 'sum'\], got 'mean'"):
        all_reduce_tensor(tensor, op="mean")


def _reduce_worker(rank: int, world_size: int, store_path: str, out_dir: str) -> None:
    """One gloo rank: reduce a float and a long tensor that differ by rank, save the results."""
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{store_path}", rank=rank, world_size=world_size
    )
    try:
        total = all_reduce_tensor(torch.tensor([1.0, 10.0 * rank]), op="sum")
        largest = all_reduce_tensor(torch.tensor([-1, rank, 5 - rank]), op="max")
        torch.save(
            {"sum": total, "max": largest, "rank": get_process_rank()}, f"{out_dir}/rank{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


def test_all_reduce_tensor_sums_and_maxes_over_two_gloo_ranks(tmp_path):
    import torch.multiprocessing as mp

    args = (2, str(tmp_path / "store"), str(tmp_path))
    mp.spawn(_reduce_worker, args=args, nprocs=2, join=True)  # spawn: fork deadlocks torch threads
    for rank in (0, 1):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert result["rank"] == rank
        assert result["sum"].tolist() == [2.0, 10.0]
        assert result["max"].tolist() == [-1, 1, 5]


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
