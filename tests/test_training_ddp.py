"""`torchrun --nproc_per_node 2 -m fercleaner score` on CPU (gloo) writes one whole scores file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from fercleaner.errors import ConfigError
from fercleaner.scoring import read_scores
from fercleaner.synth import write_synthetic_dataset
from fercleaner.training.distributed import (
    all_reduce_tensor,
    choose_backend,
    get_process_rank,
    init_distributed,
    shard_indices,
)

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


def test_the_backend_follows_the_training_device():
    assert choose_backend("auto", cuda_devices=2, local_world_size=2) == "nccl"
    assert choose_backend("cuda", cuda_devices=8, local_world_size=4) == "nccl"
    # a CPU run on a GPU machine reduces CPU tensors: gloo, however many GPUs
    assert choose_backend("cpu", cuda_devices=2, local_world_size=4) == "gloo"
    assert choose_backend("auto", cuda_devices=0, local_world_size=2) == "gloo"


def test_more_cuda_processes_than_gpus_is_refused_before_nccl_would_be(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    # raised before any process group is joined: nothing to tear down, no peer awaited
    with pytest.raises(ConfigError, match=r"2 processes on this machine but it has 1 GPU, "):
        init_distributed("auto")
    with pytest.raises(ConfigError, match=r"--nproc_per_node 1 \(or train.device=cpu"):
        init_distributed("cuda")
    assert not torch.distributed.is_initialized()


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
    command = _torchrun_score(faces, run)
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


def _torchrun_score(faces, run, *extra: str, method: str | None = None) -> list[str]:
    """`torchrun --nproc_per_node 2 -m fercleaner score` with the quick recipe made tiny."""
    return [
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
        *(["--method", method] if method else []),
        *TINY,
        *extra,
    ]


def _worker_of_rank(launcher_pid: int, rank: int) -> int | None:
    """The pid of torchrun's worker process with RANK=`rank` (read from /proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == launcher_pid and f"RANK={rank}".encode() in environ:
            return int(entry)
    return None


#: Room for a kill after the first checkpoint of the killed-rank test.
EPOCHS_12 = ("train.epochs=12",)


@pytest.mark.slow
@pytest.mark.timeout(420)  # four torchrun launches; each wait below is bounded within it
def test_a_killed_rank_leaves_a_run_that_resume_completes(tmp_path):
    """kill -9 of rank 1 mid-training: torchrun stops the job; `--resume` finishes it from the
    last checkpoint and gives the scores of an uninterrupted run."""
    import signal
    import time

    from fercleaner.training.checkpoint import load_checkpoint

    faces = tmp_path / "faces"
    write_synthetic_dataset(faces, n=64, layout="imagefolder", seed=3, noise_rate=0.2, size=32)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = subprocess.run(
        _torchrun_score(faces, tmp_path / "straight", *EPOCHS_12, method="baseline"),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert straight.returncode == 0, straight.stderr[-3000:]

    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / "baseline" / "fold0.pt"
    launcher = subprocess.Popen(
        _torchrun_score(faces, run, *EPOCHS_12, method="baseline"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        victim = None
        while victim is None:  # rank 1's pid first, so the kill is one call after the save
            assert time.monotonic() < deadline and launcher.poll() is None, "no rank 1 started"
            victim = _worker_of_rank(launcher.pid, rank=1)
            time.sleep(0.05)
        while not checkpoint.exists():
            assert time.monotonic() < deadline and launcher.poll() is None, "no checkpoint"
            time.sleep(0.01)
        os.kill(victim, signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode != 0, stderr[-2000:]
    assert not (run / "run.json").exists()  # the killed job left no finished run
    stopped_after = load_checkpoint(checkpoint)["epoch"]
    assert stopped_after < 11, "the job finished before the kill; the test needs more epochs"

    resumed = subprocess.run(
        _torchrun_score(faces, run, *EPOCHS_12, "--resume", method="baseline"),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2
    # only the epochs after the checkpoint were trained again, on all 64 images
    assert info["training"][0]["images_trained"] == (11 - stopped_after) * 64
    got = read_scores(run / "scores.parquet").frame.set_index("sample_id").sort_index()
    want = read_scores(tmp_path / "straight" / "scores.parquet").frame
    want = want.set_index("sample_id").sort_index()
    assert list(got.index) == list(want.index)
    pd.testing.assert_series_equal(
        got["label_quality"], want["label_quality"], check_exact=False, atol=1e-5
    )
