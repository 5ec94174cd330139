"""`bench/issue_type_rules.py`: issue-type rules re-checked against the votes of a finished run."""

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
    "fercleaner_bench_issue_type_rules", REPO / "bench" / "issue_type_rules.py"
)
issue_type_rules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(issue_type_rules)
FAKE_SCORE = [sys.executable, str(Path(__file__).with_name("_fake_score.py"))]


def test_the_shipped_rule_reproduces_the_benchs_own_check(tmp_path, capsys):
    votes = []
    for i in range(90):
        row = [0] * 10
        row[2 * (i % 3)], row[2 * ((i + 1) % 3)] = 6 + i % 4, 4 - i % 4
        votes.append(row)
    out = tmp_path / "bench"
    run_benchmark(
        write_ferplus_valid(tmp_path, votes),
        out=out,
        protocol="annotator",
        seed=0,
        splits=["val"],
        references=[],
        score_command=FAKE_SCORE,
    )
    assert issue_type_rules.main([str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    bench = json.loads((out / "bench.json").read_text())["issue_types"]["fercleaner"]
    rules = printed["mislabeled_by_rule"]
    # the script recomputes the shipped rule from the scores; the bench read the run's column
    assert bench["mislabeled"]["count"] > 0
    for key in ("count", "precision", "base_rate", "lift"):
        assert rules["shipped"][key]["mean"] == pytest.approx(bench["mislabeled"][key]), key
        assert rules["shipped"][key]["sd"] == 0.0  # one run
    # the stricter cut keeps a subset of the shipped rule's mislabeled images
    strict = rules["shipped_and_quality_below_flagged_median"]["count"]["mean"]
    assert strict <= rules["shipped"]["count"]["mean"]
    flagged = bench["flagged"]
    quarter = rules["quality_in_flagged_lowest_quarter"]["count"]["mean"]
    assert 0 < quarter <= flagged / 4 + 1
    aucs = printed["auc_people_mislabeled_among_flagged"]
    assert set(aucs) >= {"low label_quality", "soft[proposal] - soft[given]"}
    assert all(0.0 <= value <= 1.0 for value in aucs.values())
