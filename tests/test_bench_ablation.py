"""`bench/ablation.py`: suites compared on the runs they share, deltas to the plain reference."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "fercleaner_bench_ablation", REPO / "bench" / "ablation.py"
)
ablation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablation)


def _suite(root: Path, runs: dict[str, tuple[float, float]]) -> Path:
    """A suite folder: per run, fercleaner's and the plain reference's AP (other metrics fixed)."""
    for run, (ours, plain) in runs.items():
        metrics = dict.fromkeys(ablation.METRICS, 0.5) | {"cpu_s": 100.0}
        systems = {"fercleaner": metrics | {"ap": ours}, "plain_ce": metrics | {"ap": plain}}
        (root / run).mkdir(parents=True)
        (root / run / "bench.json").write_text(json.dumps({"systems": systems}))
    return root


def test_variants_are_compared_on_the_runs_all_of_them_finished(tmp_path, capsys):
    default = _suite(tmp_path / "default", {"a": (0.6, 0.5), "b": (0.7, 0.5), "c": (0.9, 0.5)})
    method = _suite(tmp_path / "mtac", {"a": (0.5, 0.5), "b": (0.6, 0.5)})  # c unfinished
    summary = ablation.summarise(
        {"default": ablation.read_runs(default), "mtac": ablation.read_runs(method)}
    )
    assert summary["runs"] == ["a", "b"]
    assert list(summary["variants"]) == ["plain_ce", "default", "mtac"]
    assert summary["variants"]["default"]["ap"]["mean"] == pytest.approx(0.65)
    assert summary["variants"]["default"]["delta_ap"]["mean"] == pytest.approx(0.15)
    assert summary["variants"]["mtac"]["delta_ap"]["sd"] == pytest.approx(0.0707, abs=1e-4)
    assert "delta_ap" not in summary["variants"]["plain_ce"]
    assert ablation.main([f"default={default}", f"mtac={method}", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert "| mtac | 0.550 ± 0.071 | 0.050 ± 0.071 |" in table


def test_folders_without_a_shared_run_are_an_error(tmp_path):
    one = ablation.read_runs(_suite(tmp_path / "one", {"a": (0.6, 0.5)}))
    other = ablation.read_runs(_suite(tmp_path / "other", {"b": (0.6, 0.5)}))
    with pytest.raises(SystemExit, match="share no finished run"):
        ablation.summarise({"one": one, "other": other})
