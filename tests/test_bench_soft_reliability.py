"""`bench/soft_reliability.py`: the soft label against the votes, from a finished bench run."""

from __future__ import annotations

import json

import pytest
from _bench_helpers import load_bench_script, run_annotator_bench

soft_reliability = load_bench_script("soft_reliability")


def test_offline_figures_match_the_benchs_own_and_the_plot_is_drawn(tmp_path, capsys):
    votes = []
    for i in range(60):
        row = [0] * 10
        row[2 * (i % 3)], row[2 * ((i + 1) % 3)] = 6 + i % 3, 4 - i % 3
        votes.append(row)
    cache = tmp_path / "refs"
    out = run_annotator_bench(
        tmp_path, votes, references=["plain"], reference_epochs=1, reference_cache=cache
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
