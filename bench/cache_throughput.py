"""Benchmark the decoded-image cache on the FERPlus train split; prints one JSON object.

Measures a cold build (empty cache folder) in images/s, a warm rerun (nothing to decode),
and peak RSS of this process and of its decoding workers. Targets (issue 2): >= 3,000
images/s on the 2-core dev machine, peak RSS < 1 GB.

    .venv/bin/python bench/cache_throughput.py [--dataset ../shared/datasets/ferplus]
        [--size 48] [--channels 1] [--workers 2] [--drop-page-cache]

`--drop-page-cache` asks the kernel to evict the page cache first (needs root, and
affects everyone on the machine; otherwise the figure is for files already in the page
cache and says so). `images_per_cpu_s` divides by CPU time (this process + workers),
which stays comparable when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATASET = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "ferplus"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET.resolve())
    parser.add_argument("--split", default="train")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drop-page-cache", action="store_true")
    args = parser.parse_args(argv)

    from fercleaner.cache import build_cache
    from fercleaner.datasets import read_dataset

    t0 = time.perf_counter()
    data = read_dataset(args.dataset, check_images=False)
    samples = data.samples[data.samples["split"] == args.split]
    read_s = time.perf_counter() - t0
    page_cache = "warm"
    if args.drop_page_cache:
        page_cache = "dropped" if _drop_page_cache() else "warm (drop failed: not root)"

    cache_dir = Path(tempfile.mkdtemp(prefix="fercleaner-bench-cache-"))
    try:
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        cold = build_cache(
            samples,
            size=args.size,
            channels=args.channels,
            cache_dir=cache_dir,
            workers=args.workers,
        )
        cold_s = time.perf_counter() - t0
        cold_cpu_s = _cpu_seconds() - cpu0
        t0 = time.perf_counter()
        warm = build_cache(
            samples,
            size=args.size,
            channels=args.channels,
            cache_dir=cache_dir,
            workers=args.workers,
        )
        warm_s = time.perf_counter() - t0
        on_disk = sum(f.stat().st_size for f in cold.directory.iterdir())
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "bench": "cache_throughput",
        "dataset": str(args.dataset),
        "split": args.split,
        "images": len(samples),
        "size": args.size,
        "channels": args.channels,
        "workers": args.workers,
        "page_cache": page_cache,
        "read_dataset_s": round(read_s, 3),
        "cold_build_s": round(cold_s, 3),
        "images_per_s": round(len(samples) / cold_s, 1),
        "cold_build_cpu_s": round(cold_cpu_s, 3),
        "images_per_cpu_s": round(len(samples) / cold_cpu_s, 1),
        "decoded": cold.n_decoded,
        "problems": len(cold.problems),
        "warm_rerun_s": round(warm_s, 3),
        "warm_decoded": warm.n_decoded,
        "cache_bytes": on_disk,
        "peak_rss_mb": round(self_rss, 1),
        "peak_rss_worker_mb": round(child_rss, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
