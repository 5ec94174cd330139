"""`fercleaner bench` end to end on tiny FERPlus data with a stand-in scorer (no training)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from _bench_helpers import FAKE_SCORE
from _dataset_files import write_ferplus_valid
from typer.testing import CliRunner

from fercleaner.bench import plan_systems, run_benchmark, run_measured
from fercleaner.bench.runner import get_slice
from fercleaner.cli import app
from fercleaner.errors import FercleanerError


def _ferplus(root: Path, n: int = 80, seed: int = 0) -> Path:
    """FERPlus validation: mostly 7/3 majorities, every tenth image 5/5 (no strict majority)."""
    votes = []
    for i in range(n):
        row = [0] * 10
        main, other = i % 4, (i % 4 + 1) % 4  # neutral, happiness, surprise, sadness
        row[main], row[other] = (5, 5) if i % 10 == 9 else (7, 3)
        votes.append(row)
    return write_ferplus_valid(root, votes, seed=seed)


def test_run_benchmark_annotator_end_to_end(tmp_path):
    dataset = _ferplus(tmp_path)
    out = tmp_path / "bench"
    stages = []
    options = dict(
        protocol="annotator",
        seed=0,
        overrides=["train.epochs=1"],
        splits=["val"],
        max_samples=70,
        reference_epochs=1,
        reference_cache=tmp_path / "refs",
        score_command=FAKE_SCORE,
    )
    result = run_benchmark(
        dataset, out=out, progress=lambda done, total, stage: stages.append(stage), **options
    )
    # 70 of the 80 drawn; those without a strict majority (every tenth image) left out
    kept = result["protocol"]["samples"]
    assert result["protocol"]["left_out"] + kept == 70 and 5 <= result["protocol"]["left_out"] <= 8
    assert "--max-samples 70" in result["command"] and "--reference-epochs 1" in result["command"]
    assert list(result["systems"]) == ["fercleaner", "plain_ce", "cleanlab_cv5"]
    for name, metrics in result["systems"].items():
        assert metrics["samples_scored"] == kept and metrics["samples_missing"] == 0, name
        assert 0 <= metrics["ap"] <= 1 and 0 <= metrics["f1"] <= 1
        assert metrics["wall_s"] > 0 and metrics["peak_rss_mb"] > 10 and metrics["cpu_s"] > 0
        assert metrics["kl_votes_soft"] >= 0
        assert 0 <= metrics["soft_label_ece"] <= 1
        assert sum(metrics["soft_reliability"]["count"]) == kept * len(result["classes"])
    assert not result["systems"]["plain_ce"]["cached"]
    # the plain reference flags exactly where its argmax leaves the given label
    assert "ap_margin_over_reference" in result["target"]
    assert "wall_time_ratio_to_cleanlab" in result["target"]
    assert len(list((tmp_path / "refs").glob("*.parquet"))) == 2
    for name in ("bench.json", "bench.md", "pr_curves.png", "reliability.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "bench.json").read_text())
    assert saved["systems"]["fercleaner"]["ap"] == pytest.approx(
        result["systems"]["fercleaner"]["ap"]
    )
    assert "| cleanlab_cv5 |" in (out / "bench.md").read_text()
    assert stages[-1] == "done"

    # a second bench on the same noisy labels reads both references from the cache
    again = run_benchmark(dataset, out=tmp_path / "again", **options)
    for name in ("plain_ce", "cleanlab_cv5"):
        assert again["systems"][name]["cached"], name
        assert again["systems"][name]["ap"] == pytest.approx(result["systems"][name]["ap"])
        assert again["systems"][name]["wall_s"] == pytest.approx(result["systems"][name]["wall_s"])
    assert not (tmp_path / "again" / "runs" / "plain_ce.log").exists()
    # another noise seed is other labels: no cache hit
    other = run_benchmark(dataset, out=tmp_path / "other", **{**options, "seed": 1})
    assert not other["systems"]["plain_ce"]["cached"]


def test_cli_bench_pairflip_with_downstream(tmp_path):
    dataset = _ferplus(tmp_path)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(dataset),
            "--protocol",
            "pairflip",
            "--rate",
            "0.25",
            "--no-reference",
            "--method",
            "mtac",
            "--downstream",
            "--holdout",
            "0.25",
            "--score-command",
            " ".join(FAKE_SCORE),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "bench.json").read_text())
    assert set(saved["systems"]) == {"fercleaner"}
    args = json.loads((out / "runs" / "fercleaner" / "argv.json").read_text())
    assert args[args.index("--method") + 1] == "mtac" and "--recipe" not in args
    # 20 of the 80 held out (5 per class) and never cleaned: the systems score 60
    assert saved["protocol"]["name"] == "pairflip" and saved["protocol"]["samples"] == 60
    assert saved["systems"]["fercleaner"]["samples_scored"] == 60
    downstream = saved["downstream"]
    assert downstream["holdout_samples"] == 20
    assert downstream["train_samples"]["noisy"] == downstream["train_samples"]["clean"] == 60
    assert downstream["train_samples"]["cleaned"] == 60 - downstream["dropped"]
    assert set(downstream["accuracy"]) == {"noisy", "cleaned", "clean"}
    assert all(0 <= a <= 1 for a in downstream["accuracy"].values())
    run_args = json.loads((out / "downstream" / "cleaned_run" / "argv.json").read_text())
    assert run_args[-3:] == ["method.options={}", "data.splits=[train]", "train.folds=1"]
    held_out = set(
        pd.read_csv(out / "downstream" / "clean" / "labels.csv").query("split == 'test'")["path"]
    )
    assert not held_out & set(pd.read_csv(out / "noisy" / "dataset" / "labels.csv")["path"])
    assert "Downstream" in (out / "bench.md").read_text()
    assert "pr_curves.png" in result.output


def test_slices_are_disjoint_and_fixed_whatever_the_seed():
    samples = pd.DataFrame({"sample_id": [f"s{i}" for i in range(100)]})
    slices = [set(get_slice(samples, i, size=30)["sample_id"]) for i in range(3)]
    assert all(len(s) == 30 for s in slices)
    assert (
        not (slices[0] & slices[1]) and not (slices[1] & slices[2]) and not (slices[0] & slices[2])
    )
    assert set(get_slice(samples, 1, size=30)["sample_id"]) == slices[1]
    with pytest.raises(FercleanerError, match="slice 3 does not exist: 100 samples make 3"):
        get_slice(samples, 3, size=30)


def test_failing_system_reports_its_output(tmp_path):
    dataset = _ferplus(tmp_path, n=20)
    failing = [sys.executable, "-c", "import sys; print('no engine here'); sys.exit(3)"]
    with pytest.raises(FercleanerError, match="(?s)exit 3.*no engine here"):
        run_benchmark(
            dataset, out=tmp_path / "b", protocol="symmetric", references=[], score_command=failing
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"protocol": "uniform"}, "unknown noise protocol 'uniform'"),
        ({"protocol": "symmetric", "rate": 1.5}, "--rate must be in"),
        ({"protocol": "pairflip", "downstream": True, "holdout": 0.0}, "--holdout must be in"),
        ({"protocol": "symmetric", "reference_epochs": 0}, "--reference-epochs must be at least 1"),
    ],
)
def test_bad_options_fail_before_any_work(tmp_path, options, message):
    with pytest.raises(FercleanerError, match=message):
        run_benchmark(tmp_path / "missing", out=tmp_path / "b", **options)
    assert not (tmp_path / "b").exists()


def test_plan_and_measure_helpers(tmp_path):
    assert plan_systems(references=["cleanlab"], folds=3) == ["fercleaner", "cleanlab_cv3"]
    assert plan_systems(references=["cleanlab", "plain"]) == [
        "fercleaner",
        "plain_ce",
        "cleanlab_cv5",
    ]
    with pytest.raises(FercleanerError, match="unknown references"):
        plan_systems(references=["sklearn"])
    with pytest.raises(FercleanerError, match="folds >= 2"):
        plan_systems(references=["cleanlab"], folds=1)
    big = run_measured(
        [sys.executable, "-c", "x = bytearray(200 * 2**20); print('ok')"],
        log_path=tmp_path / "a.log",
    )
    small = run_measured([sys.executable, "-c", "print('ok')"], log_path=tmp_path / "b.log")
    assert big.returncode == 0 and big.tail().strip() == "ok"
    assert big.peak_rss_mb > small.peak_rss_mb + 150
    busy = run_measured(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass",
        ],
        log_path=tmp_path / "c.log",
    )
    assert busy.cpu_s >= 0.5 > small.cpu_s


def test_synthetic_truth_gives_clean_labels_and_votes(tmp_path):
    from fercleaner.synth import write_synthetic_dataset

    faces = write_synthetic_dataset(
        tmp_path / "faces", n=48, layout="imagefolder", seed=0, noise_rate=0.25, size=16, workers=1
    )
    synth_truth = pd.read_parquet(tmp_path / "faces.truth.parquet").set_index("sample_id")
    result = run_benchmark(
        faces,
        out=tmp_path / "bench",
        protocol="symmetric",
        rate=0.25,
        references=[],
        score_command=FAKE_SCORE,
    )
    truth = pd.read_parquet(tmp_path / "bench" / "noisy" / "truth.parquet")
    # the bench's truth is the synthetic clean label, not the noisy folder label
    expected = synth_truth.loc[truth["sample_id"], "clean_label"].to_numpy()
    assert (truth["true_label"].to_numpy() == expected).all()
    assert len(truth["votes"].iloc[0]) == len(result["classes"])
    assert result["systems"]["fercleaner"]["kl_votes_soft"] >= 0


def test_a_failing_system_names_itself_and_shows_its_log(tmp_path):
    from fercleaner.bench.resources import run_system
    from fercleaner.errors import FercleanerError

    command = [sys.executable, "-c", "import sys; print('no faces here'); sys.exit(4)"]
    with pytest.raises(FercleanerError, match=r"(?s)fercleaner failed \(exit 4\).*no faces here"):
        run_system("fercleaner", command, tmp_path / "runs" / "fercleaner")
    ok = run_system("plain", [sys.executable, "-c", "pass"], tmp_path / "runs" / "plain")
    assert set(ok) == {"wall_s", "peak_rss_mb", "cpu_s"} and ok["wall_s"] > 0
