"""One way to start worker processes: fork when it is safe (fast), forkserver when it is not.

Forking a process that already runs threads (torch's intra-op pool, a DataLoader) can
deadlock the child on a lock held by a thread that was not copied; a fresh forkserver
child avoids that at the cost of importing the worker's module once.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of `workers` processes with the safest fast start method available."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and "torch" not in sys.modules:
        method = "fork"
    elif "forkserver" in methods:
        method = "forkserver"
    else:
        method = "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
