"""Run independent jobs on worker processes, finishing serially if the pool breaks.

Workers are forked where the OS can (fast, and scripts need no `__main__` guard);
elsewhere they are spawned. A pool that dies (a worker killed for memory, a platform
that cannot start processes) never loses work: jobs that did not finish run again in
this process, so every job function must be idempotent.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    *,
    workers: int,
    on_done: Callable[[int, Any], None],
) -> None:
    """Call `fn(*jobs[i])` for every job; `on_done(i, result)` as each finishes, in any order.

    With `workers <= 1` or a single job everything runs in this process.
    """
    pending = set(range(len(jobs)))
    if workers > 1 and len(jobs) > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(fn, *jobs[i]): i for i in sorted(pending)}
                for future in as_completed(futures):
                    i = futures[future]
                    result = future.result()
                    pending.discard(i)
                    on_done(i, result)
        except (BrokenProcessPool, OSError):
            pass  # the jobs still pending run below, in this process
    for i in sorted(pending):
        on_done(i, fn(*jobs[i]))
