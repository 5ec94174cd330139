"""DDP plumbing for `torchrun -m fercleaner score`: process group, index sharding, gather to rank 0.

Without torchrun's environment (`WORLD_SIZE` unset or 1) every helper is a cheap no-op,
so the trainer has one code path. Methods sum their per-sample state over ranks with
`all_reduce_tensor` and ask `get_process_rank`; this module imports nothing else of
fercleaner but its errors, so methods can use it without pulling in the trainer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from fercleaner.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    """Global rank (0 writes every file)."""
    world_size: int = 1
    """Number of processes."""
    local_rank: int = 0
    """Rank on this machine (selects the GPU)."""

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes outputs and reports progress."""
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when launched by torchrun.

    `device` is the recipe's `train.device`: the backend follows where training runs
    (nccl for CUDA, gloo for CPU), so `train.device=cpu` on a GPU machine reduces CPU
    tensors with gloo.

    Raises:
        ConfigError: CUDA training with more processes on this machine than GPUs (NCCL
            refuses two ranks on one GPU); the message says how many to start.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    backend = choose_backend(device, cuda_devices=cuda_devices, local_world_size=local_world_size)
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    # Share the cores: two CPU processes each taking every core would thrash.
    if backend == "gloo":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world_size))
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def choose_backend(device: str, *, cuda_devices: int, local_world_size: int) -> str:
    """`nccl` when `device` (`auto`, `cuda` or `cpu`) trains on CUDA, else `gloo`.

    Raises:
        ConfigError: CUDA training with more processes on this machine than GPUs.
    """
    if device == "cpu" or cuda_devices == 0:
        return "gloo"
    if local_world_size > cuda_devices:
        raise ConfigError(
            f"torchrun started {local_world_size} processes on this machine but it has "
            f"{cuda_devices} GPU{'s' if cuda_devices != 1 else ''}, and NCCL needs one GPU "
            f"per process: use --nproc_per_node {cuda_devices} (or train.device=cpu to "
            "train on the CPU with gloo)."
        )
    return "nccl"


def shutdown_distributed(info: DistInfo) -> None:
    """Leave the process group (safe to call when not distributed)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op when not distributed)."""
    if info.enabled:
        dist.barrier()


def shard_indices(indices: np.ndarray, *, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of `indices`, padded by wrapping so every rank gets the same count.

    Equal counts keep the ranks in lock-step (same number of optimizer steps), as
    torch's DistributedSampler does; the padding repeats a few samples.
    """
    if world_size <= 1 or len(indices) == 0:
        return indices
    per_rank = -(-len(indices) // world_size)
    padded = np.resize(indices, per_rank * world_size)  # wraps around
    return padded[rank::world_size]


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """Every rank's `obj` as a list on rank 0 (None elsewhere); `[obj]` when not distributed."""
    if not info.enabled:
        return [obj]
    gathered: list[Any] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def all_reduce_sum(array: np.ndarray, info: DistInfo) -> np.ndarray:
    """Element-wise sum of `array` over all ranks (float64), the same on every rank."""
    if not info.enabled:
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


#: `all_reduce_tensor`'s ops, by name, as `torch.distributed.ReduceOp` members.
_REDUCE_OPS = {"sum": "SUM", "max": "MAX"}


def all_reduce_tensor(tensor: torch.Tensor, *, op: str = "sum") -> torch.Tensor:
    """Reduce `tensor` in place over all ranks (`op`: "sum" or "max"); returns it.

    A no-op without an initialised process group (one process, or a test calling a
    method directly), so a method's per-sample state has one code path. The tensor must
    live where the backend reduces (CPU for gloo, the rank's GPU for nccl).
    """
    if op not in _REDUCE_OPS:
        raise ValueError(f"all_reduce_tensor: op must be one of {sorted(_REDUCE_OPS)}, got {op!r}")
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, _REDUCE_OPS[op]))
    return tensor


def get_process_rank() -> int:
    """This process's global rank in the initialised process group; 0 without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def broadcast_from_main(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
