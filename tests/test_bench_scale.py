"""`bench/scale.py` end to end at a small N: every stage runs and fills the issue's fields."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_helpers import load_bench_script

REPO = Path(__file__).resolve().parents[1]


def _scale_fields() -> tuple[str, ...]:
    """`bench/scale.py`'s FIELDS: every figure issue 11 names."""
    return load_bench_script("scale").FIELDS


@pytest.mark.slow
def test_every_stage_fills_its_fields_and_the_browser_times_the_review(tmp_path):
    pytest.importorskip("playwright.sync_api")
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    stages = "ingest,cache,score,review,browser,export"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "scale.py"), "--n", "300", "--stages", stages]
        + ["--workdir", str(tmp_path / "work"), "--decisions", "100"],
        capture_output=True,
        text=True,
        timeout=280,  # under the suite's 300 s per test
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert not [k for k in result if k.endswith("_error")], result
    for field in _scale_fields():
        assert isinstance(result[field], (int, float)) and result[field] > 0, field
    # the review fields are the browser's; AppTest's are kept beside them
    assert result["review_timing"].startswith("Chromium")
    assert result["review_click_s"] == result["browser_click_s"]
    assert result["review_apptest_click_s"] > 0
    assert result["decisions_in_store"] == 100 and result["export_rows"] == 300
    # scoring from the generated model's predictions: every csv image, ~10% flagged
    assert result["score_samples"] == 300 and 0 < result["score_flagged"] < 100
    assert result["score_csv_peak_rss_mb"] > 0
    # the export's own peak, not the streaming read after it
    assert result["export_peak_rss_mb"] == result["export_only_peak_rss_mb"]
    assert result["export_process_peak_rss_mb"] >= result["export_peak_rss_mb"]


def test_the_infer_and_dynamics_stages_run_the_whole_score_path_at_n(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "scale.py"), "--n", "300"]
        + ["--stages", "infer,dynamics", "--workdir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert not [k for k in result if k.endswith("_error")], result
    # every image predicted and scored; only the 1% `val` split trained on
    assert result["infer_samples"] == 300 and result["infer_trained_on"] == 3
    assert 0 < result["infer_anonymous_peak_mb"] < result["infer_csv_peak_rss_mb"]
    assert {"read_s", "cache_s", "train_baseline_s", "write_s"} <= set(result["infer_timings_s"])
    # the dynamics live in epoch files: the checkpoint carries none of them
    assert result["dynamics_epochs"] == 30 and result["dynamics_checkpoint_mb"] < 0.01
    assert result["dynamics_epoch_files_mb"] > 0
