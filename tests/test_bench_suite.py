"""Bench suites: run lists, the mean ± sd summary, per-run deltas and the target on the means."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from _bench_helpers import FAKE_SCORE

from fercleaner.bench.runner import get_slice
from fercleaner.bench.suite import SUITES, run_suite, summarize_suite
from fercleaner.errors import FercleanerError


def _result(ours: dict, plain: dict, cleanlab: dict) -> dict:
    return {"systems": {"fercleaner": ours, "plain_ce": plain, "cleanlab_cv5": cleanlab}}


def test_ferplus_suite_is_three_validation_seeds_and_three_train_slices():
    runs = SUITES["ferplus"]
    assert [r.name for r in runs] == [
        "val-s0",
        "val-s1",
        "val-s2",
        "train0-s0",
        "train1-s0",
        "train2-s0",
    ]
    assert {r.protocol for r in runs} == {"annotator"}
    assert [r.slice_index for r in runs] == [None, None, None, 0, 1, 2]


def test_heldout_suite_uses_train_images_and_seeds_the_ferplus_suite_does_not():
    """The check of a default must not share data with what it was chosen on."""
    train = pd.DataFrame({"sample_id": range(28_558)})  # FERPlus train's image count
    chosen_on = {
        sample_id
        for run in SUITES["ferplus"]
        if run.slice_index is not None
        for sample_id in get_slice(train, run.slice_index)["sample_id"]
    }
    runs = SUITES["heldout"]
    assert {r.protocol for r in runs} == {"annotator"}
    assert {r.splits for r in runs} == {("train",)}
    assert not {r.seed for r in runs} & {r.seed for r in SUITES["ferplus"]}
    held_out = [set(get_slice(train, r.slice_index)["sample_id"]) for r in runs]
    assert all(len(ids) == 3_600 and not ids & chosen_on for ids in held_out)
    assert len(set.union(*held_out)) == 3 * 3_600  # disjoint from each other


def test_summary_is_mean_and_sd_with_deltas_against_the_best_reference():
    results = {
        "r1": _result(
            {"ap": 0.60, "f1": 0.50, "correction_accuracy": 0.8, "wall_s": 30.0},
            {"ap": 0.50, "f1": 0.48, "wall_s": 40.0},
            {"ap": 0.52, "f1": 0.45, "wall_s": 100.0},
        ),
        "r2": _result(
            {"ap": 0.50, "f1": 0.52, "correction_accuracy": 0.7, "wall_s": 50.0},
            {"ap": 0.44, "f1": 0.46, "wall_s": 40.0},
            {"ap": 0.40, "f1": 0.49, "wall_s": 100.0},
        ),
    }
    summary = summarize_suite(results)
    ap = summary["systems"]["fercleaner"]["ap"]
    assert ap["mean"] == pytest.approx(0.55) and ap["sd"] == pytest.approx(0.0707, abs=1e-4)
    assert ap["runs"] == 2
    # each run's delta is against that run's best reference on that metric
    assert summary["deltas_vs_reference"]["r1"] == pytest.approx({"ap": 0.08, "f1": 0.02})
    assert summary["deltas_vs_reference"]["r2"] == pytest.approx({"ap": 0.06, "f1": 0.03})
    target = summary["target_on_means"]
    # means: ours AP 0.55 vs best reference mean 0.47 (plain); F1 0.51 vs 0.47 (both)
    assert target["ap_margin_over_reference"] == pytest.approx(0.08)
    assert target["ap_at_least_reference_plus_0.05"] is True
    assert target["f1_at_least_reference_plus_0.03"] is True
    assert target["correction_accuracy_at_least_0.75"] is True  # mean 0.75
    assert target["wall_time_ratio_to_cleanlab"] == pytest.approx(0.4)
    assert target["at_most_0.4x_cleanlab_wall_time"] is True
    # a cached reference's wall time comes from another load: judge CPU seconds instead
    for run in results.values():
        run["systems"]["cleanlab_cv5"].update(cached=True, cpu_s=100.0)
        run["systems"]["fercleaner"]["cpu_s"] = 50.0
    cached = summarize_suite(results)["target_on_means"]
    assert "at_most_0.4x_cleanlab_wall_time" not in cached
    assert cached["at_most_0.4x_cleanlab_cpu_time"] is False  # 0.5x


def test_run_suite_writes_summary_and_plot(tmp_path):
    from fercleaner.synth import write_synthetic_dataset

    faces = write_synthetic_dataset(
        tmp_path / "faces", n=60, layout="imagefolder", seed=0, noise_rate=0.0, size=16, workers=1
    )
    lines = []
    summary = run_suite(
        faces,
        suite="synthetic",
        out=tmp_path / "suite",
        runs=["symmetric20-s0", "pairflip20-s1"],
        references=[],
        score_command=FAKE_SCORE,
        progress=lines.append,
    )
    assert summary["runs"] == ["symmetric20-s0", "pairflip20-s1"]
    assert summary["systems"]["fercleaner"]["ap"]["runs"] == 2
    saved = json.loads((tmp_path / "suite" / "suite.json").read_text())
    assert saved["suite"] == "synthetic"
    assert (tmp_path / "suite" / "pairflip20-s1" / "bench.json").is_file()
    assert (tmp_path / "suite" / "deltas.png").stat().st_size > 0
    assert "| fercleaner |" in (tmp_path / "suite" / "suite.md").read_text()
    assert lines[0] == "run 1/2: symmetric20-s0"
    with pytest.raises(FercleanerError, match="has no runs \\['val-s9'\\]"):
        run_suite(faces, suite="synthetic", out=tmp_path / "x", runs=["val-s9"])
    with pytest.raises(FercleanerError, match="unknown suite 'cifar'"):
        run_suite(faces, suite="cifar", out=tmp_path / "x")


def test_resume_reuses_finished_runs_and_the_cli_refuses_options_a_suite_ignores(tmp_path):
    from typer.testing import CliRunner

    from fercleaner.cli import app
    from fercleaner.synth import write_synthetic_dataset

    faces = write_synthetic_dataset(
        tmp_path / "faces", n=60, layout="imagefolder", seed=0, noise_rate=0.0, size=16, workers=1
    )
    options = dict(suite="synthetic", out=tmp_path / "suite", runs=["symmetric20-s0"])
    first = run_suite(faces, references=[], score_command=FAKE_SCORE, **options)
    failing = [sys.executable, "-c", "import sys; sys.exit(3)"]  # would fail if it ran again
    lines = []
    again = run_suite(
        faces, references=[], score_command=failing, resume=True, progress=lines.append, **options
    )
    assert again["systems"] == first["systems"] and "reused" in lines[0]
    runner = CliRunner()
    for extra, message in (
        (["--suite", "synthetic", "--seed", "1"], "drop --seed"),
        (
            ["--suite", "synthetic", "--protocol", "pairflip", "--split", "val"],
            "drop --protocol, --split",
        ),
        (["--run", "val-s0"], "--run and --resume work on a suite"),
    ):
        result = runner.invoke(app, ["bench", str(faces), "--out", str(tmp_path / "x"), *extra])
        assert result.exit_code == 2 and message in result.output, result.output
