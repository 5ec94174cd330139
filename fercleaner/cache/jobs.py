"""Decode jobs: images decoded straight into their rows of the shared memmap, on a process pool.

Small requests decode in this process (a pool would cost more than it saves); each job
reopens the memmap by path, so workers share nothing but the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fercleaner._pool import run_jobs
from fercleaner.decode import DecodeError, decode_image, decode_pixels

#: Fewer images than this are decoded in this process: a pool would cost more than it saves.
_SERIAL_BELOW = 1024
_TASK_ROWS = 512

ProgressFn = Callable[[int, int], None]
#: Called with the rows one job finished (in the memmap, flushed) and that job's failures.
RowsDoneFn = Callable[[list[int], dict[int, tuple[str, str]]], None]


def decode_all(
    tasks,
    data_path: Path,
    *,
    n_rows,
    size,
    channels,
    workers,
    progress: ProgressFn | None,
    on_rows_done: RowsDoneFn | None = None,
) -> dict[int, tuple[str, str]]:
    """Decode `tasks` into their rows of the memmap; returns {row: (kind, reason)} failures.

    Args:
        tasks: (row, sample_id, source, fingerprint) per image; sources are
            ("file", path, box) or ("pixels", path, pixel string).
        on_rows_done: called as each job finishes, before `progress` (the build
            checkpoints its index there, so a killed build keeps what was finished).
    """
    total = len(tasks)
    if total == 0:
        return {}
    jobs = [
        [(row, sample_id, source) for row, sample_id, source, _ in tasks[i : i + _TASK_ROWS]]
        for i in range(0, total, _TASK_ROWS)
    ]
    args = (str(data_path), n_rows, size, channels)
    failed: dict[int, tuple[str, str]] = {}
    done = 0

    def collect(i: int, result: dict[int, tuple[str, str]]) -> None:
        nonlocal done
        failed.update(result)
        done += len(jobs[i])
        if on_rows_done is not None:
            on_rows_done([row for row, _, _ in jobs[i]], result)
        if progress is not None:
            progress(done, total)

    run_jobs(
        decode_job,
        [(job, *args) for job in jobs],
        workers=workers if total >= _SERIAL_BELOW else 1,
        on_done=collect,
    )
    return failed


def decode_job(job, data_path: str, n_rows: int, size: int, channels: int):
    """Worker: decode each (row, sample_id, source) into the shared memmap."""
    data = np.memmap(data_path, dtype=np.uint8, mode="r+", shape=(n_rows, size, size, channels))
    failed = {}
    for row, sample_id, (kind, path, extra) in job:
        try:
            if kind == "pixels":
                data[row] = decode_pixels(extra, size=size, channels=channels, where=sample_id)
            else:
                data[row] = decode_image(path, size=size, channels=channels, box=extra)
        except DecodeError as exc:
            failed[row] = (exc.kind, exc.reason)
    data.flush()
    del data
    return failed
