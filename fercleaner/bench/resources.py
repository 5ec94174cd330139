"""Run a command in a child process and measure its wall time, CPU time and peak resident memory.

Peak RSS comes from `os.wait4`'s rusage for the command's process, which on Linux is
the largest RSS of that process or any descendant it reaped (a max, not a sum over
workers). A child forked straight from a large parent inherits the parent's RSS
high-water mark across exec, so the command is started from a small launcher
interpreter that waits for it and records its rusage: the figure then belongs to the
command alone (plus at most the launcher's ~10 MB).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Runs argv[2:], waits with wait4, writes {"returncode", "maxrss_kib", "cpu_s"} to argv[1].
_LAUNCHER = """
import json, os, subprocess, sys
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as fh:
    json.dump({"returncode": code, "maxrss_kib": usage.ru_maxrss,
               "cpu_s": usage.ru_utime + usage.ru_stime}, fh)
sys.exit(code if code >= 0 else 1)
"""


@dataclass(frozen=True)
class ProcessResult:
    """Outcome of one measured child process."""

    command: list[str]
    returncode: int
    wall_s: float
    peak_rss_mb: float
    log_path: Path
    cpu_s: float = 0.0
    """User + system CPU seconds of the command and its reaped descendants: unlike wall
    time, barely affected by other jobs on a shared machine."""
    """stdout+stderr of the child."""

    def tail(self, chars: int = 2000) -> str:
        """The end of the child's log, for error messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]


def run_measured(
    command: Sequence[str], *, log_path: str | os.PathLike[str], env: dict[str, str] | None = None
) -> ProcessResult:
    """Run `command` to completion, output logged to `log_path`; never raises on a non-zero exit."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    usage_path = log_path.with_name(log_path.name + ".rusage.json")
    usage_path.unlink(missing_ok=True)
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        completed = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(usage_path), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            check=False,
        )
    wall = time.perf_counter() - start
    try:
        usage = json.loads(usage_path.read_text())
    except (OSError, ValueError):  # the launcher itself failed (e.g. command not found)
        usage = {"returncode": completed.returncode or 1, "maxrss_kib": 0, "cpu_s": 0.0}
    return ProcessResult(
        command=list(command),
        returncode=int(usage["returncode"]),
        wall_s=wall,
        peak_rss_mb=usage["maxrss_kib"] / 1024.0,  # Linux reports KiB
        log_path=log_path,
        cpu_s=float(usage["cpu_s"]),
    )


def run_system(name: str, command: Sequence[str], run_dir: Path) -> dict[str, float]:
    """Run a system's command (logged beside `run_dir`) and return its cost.

    Raises:
        FercleanerError: the command failed; names the system and shows the log's tail.
    """
    from fercleaner.errors import FercleanerError

    result = run_measured(command, log_path=run_dir.with_suffix(".log"))
    if result.returncode != 0:
        raise FercleanerError(
            f"{name} failed (exit {result.returncode}): {shlex.join(command)}\n"
            f"last output ({result.log_path}):\n{result.tail()}"
        )
    return {"wall_s": result.wall_s, "peak_rss_mb": result.peak_rss_mb, "cpu_s": result.cpu_s}
