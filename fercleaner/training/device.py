"""Device and numeric precision: CUDA with AMP if present, bf16 autocast on CPUs that support it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from fercleaner.errors import ConfigError


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: autocast dtype (None = fp32) and whether gradients are scaled."""

    device: torch.device
    """Where tensors live."""
    autocast_dtype: torch.dtype | None
    """bf16/fp16 for autocast, None for plain fp32."""
    use_grad_scaler: bool
    """True for fp16 on CUDA (bf16 needs no scaling)."""

    @property
    def name(self) -> str:
        """`bf16`, `fp16` or `fp32`."""
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.autocast_dtype, "fp32")

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context manager for the forward pass."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_thread_count(num_threads: int) -> None:
    """Refuse a `train.num_threads` above this machine's cores: more only oversubscribes
    them, and huge values crash inside torch."""
    cores = os.cpu_count() or 1
    if num_threads > cores:
        raise ConfigError(
            f"train.num_threads={num_threads} is more than this machine's {cores} cores; use"
            f" {cores} or fewer (0 lets torch choose)"
        )


def set_thread_count(num_threads: int) -> None:
    """Apply `train.num_threads` (0 keeps torch's choice), checked first."""
    check_thread_count(num_threads)
    if num_threads > 0:
        torch.set_num_threads(num_threads)


def resolve_device(device: str = "auto", *, local_rank: int = 0) -> torch.device:
    """`auto` -> this process's CUDA device when CUDA is present, else CPU."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "train.device=cuda but torch sees no CUDA device; use train.device=auto or cpu."
        )
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """Pick the autocast dtype for `precision` (`auto`, `bf16`, `fp32`) on `device`.

    `auto` means bf16 where the hardware runs it natively (CUDA with bf16, CPUs with
    AVX512-BF16/AMX), fp16 with gradient scaling on older GPUs, fp32 otherwise.
    """
    if precision == "fp32":
        return Precision(device, None, False)
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(device, torch.bfloat16, False)
        if precision == "bf16":
            raise ConfigError("train.precision=bf16 but this GPU has no bf16; use auto or fp32.")
        return Precision(device, torch.float16, True)
    if precision == "bf16" or cpu_supports_bf16():
        return Precision(device, torch.bfloat16, False)
    return Precision(device, None, False)
