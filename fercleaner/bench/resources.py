"""Run a command in a child process and measure its wall time and peak resident memory.

Peak RSS comes from `os.wait4`'s rusage for that one child, which on Linux is the
largest RSS of the child or any descendant it reaped (a max, not a sum over workers).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessResult:
    """Outcome of one measured child process."""

    command: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float
    log_path: Path
    """stdout+stderr of the child."""

    def tail(self, chars: int = 2000) -> str:
        """The end of the child's log, for error messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]


def run_measured(
    command: Sequence[str], *, log_path: str | os.PathLike[str], env: dict[str, str] | None = None
) -> ProcessResult:
    """Run `command` to completion, logging its output to `log_path`; never raises on a non-zero exit."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            list(command), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    wall = time.perf_counter() - start
    return ProcessResult(
        command=list(command),
        returncode=process.returncode,
        wall_s=wall,
        peak_rss_mb=usage.ru_maxrss / 1024.0,  # Linux reports KiB
        log_path=log_path,
    )
