"""Benchmark synthetic-face generation and dataset writing; prints one JSON object.

`generate_faces` (in memory, grey and RGB; wall clock with 2 workers, and per CPU-second
on one core, which is stable on a shared machine) and `write_synthetic_dataset` for
every layout, in faces/s. Target (issue 2): >= 1,000 faces/s at 48 px on the 2-core machine.

    .venv/bin/python bench/synth_throughput.py [--n 5000] [--size 48] [--write-n 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="faces drawn in memory")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--write-n", type=int, default=2000, help="faces written per layout")
    args = parser.parse_args(argv)

    from fercleaner.synth import LAYOUT_SPLITS, generate_faces, write_synthetic_dataset

    result: dict = {"bench": "synth_throughput", "size": args.size, "n": args.n}
    generate_faces(64, seed=0, size=args.size)  # warm-up: imports, allocator
    for name, channels in (("grey", 1), ("rgb", 3)):
        t0 = time.perf_counter()
        generate_faces(
            args.n,
            seed=1,
            size=args.size,
            channels=channels,
            occlusion_rate=0.1,
            ambiguity_rate=0.2,
            noise_rate=0.2,
        )
        result[f"generate_{name}_faces_per_s"] = round(args.n / (time.perf_counter() - t0), 1)
        # one core's CPU time: comparable across runs on a machine shared with other jobs
        c0 = time.process_time()
        generate_faces(
            args.n,
            seed=1,
            size=args.size,
            channels=channels,
            workers=1,
            occlusion_rate=0.1,
            ambiguity_rate=0.2,
            noise_rate=0.2,
        )
        result[f"generate_{name}_faces_per_cpu_s"] = round(args.n / (time.process_time() - c0), 1)

    work = Path(tempfile.mkdtemp(prefix="fercleaner-bench-synth-"))
    try:
        written = {}
        for layout in LAYOUT_SPLITS:
            t0 = time.perf_counter()
            write_synthetic_dataset(
                work / layout,
                n=args.write_n,
                layout=layout,
                seed=0,
                noise_rate=0.2,
                occlusion_rate=0.1,
                ambiguity_rate=0.2,
            )
            written[layout] = round(args.write_n / (time.perf_counter() - t0), 1)
        result["write_faces_per_s"] = written
        result["write_n"] = args.write_n
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["cpu_count"] = os.cpu_count()
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
