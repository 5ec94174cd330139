"""`bench/issue_type_rules.py`: issue-type rules re-checked against the votes of a finished run."""

from __future__ import annotations

import json

import pytest
from _bench_helpers import load_bench_script, run_annotator_bench

issue_type_rules = load_bench_script("issue_type_rules")


def test_the_shipped_rule_reproduces_the_benchs_own_check(tmp_path, capsys):
    votes = []
    for i in range(90):
        row = [0] * 10
        row[2 * (i % 3)], row[2 * ((i + 1) % 3)] = 6 + i % 4, 4 - i % 4
        votes.append(row)
    out = run_annotator_bench(tmp_path, votes, references=[])
    assert issue_type_rules.main([str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    bench = json.loads((out / "bench.json").read_text())["issue_types"]["fercleaner"]
    rules = printed["mislabeled_by_rule"]
    # the run's classes (3 with votes) are not the bench's 8: the join and the class spaces
    # must line up for the script's figures to be the bench's own
    assert len(json.loads((out / "bench.json").read_text())["classes"]) == 8
    assert bench["mislabeled"]["count"] > 0
    for key in ("count", "precision", "base_rate", "lift"):
        assert rules["shipped"][key]["mean"] == pytest.approx(bench["mislabeled"][key]), key
        assert rules["shipped"][key]["sd"] == 0.0  # one run
    assert set(rules) == {
        "shipped",
        "shipped_and_quality_below_flagged_median",
        "quality_in_flagged_lowest_quarter",
        "soft_label_majority_for_proposal",
    }
    aucs = printed["auc_people_mislabeled_among_flagged"]
    assert set(aucs) >= {"low label_quality", "soft[proposal] - soft[given]"}
    assert all(0.0 <= value <= 1.0 for value in aucs.values())
