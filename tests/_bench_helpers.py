"""What the bench tests share: the stand-in scorer, loading a `bench/` script, and a finished
annotator bench on a generated FERPlus-style dataset."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from _dataset_files import write_ferplus_valid

REPO = Path(__file__).resolve().parents[1]

#: `run_benchmark(score_command=...)` that scores from the bench's truth, no training.
FAKE_SCORE = [sys.executable, str(Path(__file__).with_name("_fake_score.py"))]


def load_bench_script(name: str) -> ModuleType:
    """`bench/<name>.py` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"fercleaner_bench_{name}", REPO / "bench" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def run_annotator_bench(root: Path, votes: Sequence[Sequence[int]], **options: Any) -> Path:
    """A finished `annotator` bench (seed 0, the val split, the stand-in scorer unless
    `options` say otherwise) on a FERPlus validation folder with these votes; its out dir."""
    from fercleaner.bench import run_benchmark

    out = root / "bench"
    settings: dict[str, Any] = {
        "protocol": "annotator",
        "seed": 0,
        "splits": ["val"],
        "score_command": FAKE_SCORE,
    }
    run_benchmark(write_ferplus_valid(root, votes), out=out, **{**settings, **options})
    return out
