"""`bench/extra_evidence.py`: the bench's own plain reference and neighbour agreement, offline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from _bench_helpers import load_bench_script, run_annotator_bench
from sklearn.metrics import f1_score

extra_evidence = load_bench_script("extra_evidence")


def test_scores_join_the_benchs_own_reference_over_the_runs_classes(tmp_path):
    """Votes only on neutral, surprise, anger and fear: the run's 4 classes are not the first
    4 of the bench's 8, and a decoy cache entry (same labels, another reference) sorts first."""
    votes = []
    for i in range(80):
        row = [0] * 10
        row[2 * (i % 4)], row[2 * ((i + 1) % 4)] = 7, 3
        votes.append(row)
    cache = tmp_path / "refs"
    out = run_annotator_bench(
        tmp_path, votes, references=["plain"], reference_epochs=1, reference_cache=cache
    )
    (entry,) = cache.glob("*.parquet")
    decoy = pd.read_parquet(entry)
    decoy["pred_probs"] = [np.roll(p, 1) for p in decoy["pred_probs"]]
    decoy.to_parquet(cache / "000000000000000000000000.parquet")
    shutil.copyfile(entry.with_suffix(".json"), cache / "000000000000000000000000.json")
    scores = pd.read_parquet(out / "runs" / "fercleaner" / "scores.parquet")
    assert sorted(set(scores["given_label"])) == ["anger", "fear", "neutral", "surprise"]

    run = extra_evidence.score_run(out, cache)
    # the bench's own AP of fercleaner and of its plain reference, from the same files
    systems = json.loads((out / "bench.json").read_text())["systems"]
    assert run["fercleaner"] == pytest.approx(systems["fercleaner"]["ap"])
    assert run["plain"] == pytest.approx(systems["plain_ce"]["ap"])
    # argmax flags of fercleaner's probabilities: where its predicted label (a class name)
    # leaves the given one
    truth = pd.read_parquet(out / "noisy" / "truth.parquet").set_index("sample_id")
    argmax_flags = (scores["predicted_label"] != scores["given_label"]).to_numpy()
    is_noisy = truth.loc[scores["sample_id"], "is_noisy"].to_numpy(bool)
    assert run["f1_fercleaner"] == pytest.approx(f1_score(is_noisy, argmax_flags))
    for name in ("hog_knn10", "pixel_pca_knn30_fused", "two_models_rank_mean"):
        assert 0 < run[name] <= 1, name
    systems = json.loads((out / "bench.json").read_text())["systems"]
    assert systems["plain_ce"]["samples_scored"] == len(scores)

    with pytest.raises(SystemExit, match="no cached plain reference"):
        extra_evidence.score_run(out, tmp_path / "elsewhere")
