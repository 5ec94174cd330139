"""`bench/soft_reliability.py`: the soft label against the votes, from a finished bench run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from _dataset_files import write_ferplus_valid

from fercleaner.bench import run_benchmark

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "fercleaner_bench_soft_reliability", REPO / "bench" / "soft_reliability.py"
)
soft_reliability = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soft_reliability)
FAKE_SCORE = [sys.executable, str(Path(__file__).with_name("_fake_score.py"))]


def test_offline_figures_match_the_benchs_own_and_the_plot_is_drawn(tmp_path, capsys):
    votes = []
    for i in range(60):
        row = [0] * 10
        row[2 * (i % 3)], row[2 * ((i + 1) % 3)] = 6 + i % 3, 4 - i % 3
        votes.append(row)
    out, cache = tmp_path / "bench", tmp_path / "refs"
    run_benchmark(
        write_ferplus_valid(tmp_path, votes),
        out=out,
        protocol="annotator",
        seed=0,
        splits=["val"],
        references=["plain"],
        reference_epochs=1,
        reference_cache=cache,
        score_command=FAKE_SCORE,
    )
    plot = tmp_path / "soft.png"
    assert soft_reliability.main([str(out), "--cache", str(cache), "--plot", str(plot)]) == 0
    printed = json.loads(capsys.readouterr().out)
    systems = json.loads((out / "bench.json").read_text())["systems"]
    # no cleanlab reference was trained for this run: only the two systems that exist
    assert set(printed["pooled"]) == {"fercleaner", "plain_ce"}
    for name in ("fercleaner", "plain_ce"):
        mine = printed["runs"][str(out)][name]
        assert mine["ece"] == pytest.approx(systems[name]["soft_label_ece"], abs=1e-6)
        assert mine["top_ece"] == pytest.approx(systems[name]["soft_label_top_ece"], abs=1e-6)
        assert mine["kl_votes_soft"] == pytest.approx(systems[name]["kl_votes_soft"], abs=1e-6)
        # one run pooled is that run
        assert printed["pooled"][name]["ece"] == pytest.approx(mine["ece"])
        curve, theirs = printed["pooled"][name]["curve"], systems[name]["soft_reliability"]
        assert curve["count"] == theirs["count"]
        for key in ("mean_soft", "vote_share"):
            assert curve[key] == pytest.approx(theirs[key], abs=1e-6), (name, key)
    assert plot.stat().st_size > 0
