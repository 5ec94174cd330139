"""`bench/ablation.py`: suites compared on the runs they share, deltas to the plain reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _bench_helpers import load_bench_script

ablation = load_bench_script("ablation")


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


def test_a_metric_a_run_leaves_nan_or_lacks_is_averaged_over_the_others(tmp_path, capsys):
    """kl_votes_soft is absent without votes; correction_accuracy is NaN with nothing flagged."""
    suite = _suite(tmp_path / "default", {"a": (0.6, 0.5), "b": (0.8, 0.5)})
    a, b = suite / "a" / "bench.json", suite / "b" / "bench.json"
    result = json.loads(a.read_text())
    result["systems"]["fercleaner"]["correction_accuracy"] = float("nan")
    del result["systems"]["fercleaner"]["kl_votes_soft"]
    a.write_text(json.dumps(result))
    result = json.loads(b.read_text())
    result["systems"]["fercleaner"]["correction_accuracy"] = 0.9
    b.write_text(json.dumps(result))
    row = ablation.summarise({"default": ablation.read_runs(suite)})["variants"]["default"]
    assert row["correction_accuracy"] == {"mean": pytest.approx(0.9), "sd": 0.0, "runs": 1}
    assert row["delta_correction_accuracy"]["mean"] == pytest.approx(0.4)
    assert row["kl_votes_soft"]["runs"] == 1 and row["ap"]["runs"] == 2
    del result["systems"]["plain_ce"]
    b.write_text(json.dumps(result))
    with pytest.raises(SystemExit, match="run b's bench.json has no system 'plain_ce'"):
        ablation.summarise({"default": ablation.read_runs(suite)})


def test_bad_arguments_name_the_folder_or_the_form(tmp_path, capsys):
    with pytest.raises(SystemExit, match=f"{tmp_path / 'empty'} holds no finished run"):
        ablation.read_runs(tmp_path / "empty")
    with pytest.raises(SystemExit):
        ablation.main([str(tmp_path)])
    assert "write each variant as NAME=SUITE_OUTPUT_FOLDER" in capsys.readouterr().err
