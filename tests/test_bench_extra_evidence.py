"""`bench/extra_evidence.py`: the bench's own plain reference and neighbour agreement, offline."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _dataset_files import write_ferplus_valid
from sklearn.metrics import f1_score

from fercleaner.bench import run_benchmark

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "fercleaner_bench_extra_evidence", REPO / "bench" / "extra_evidence.py"
)
extra_evidence = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(extra_evidence)
FAKE_SCORE = [sys.executable, str(Path(__file__).with_name("_fake_score.py"))]


def test_scores_join_the_benchs_own_reference_over_the_runs_classes(tmp_path):
    """Votes only on neutral, surprise, anger and fear: the run's 4 classes are not the first
    4 of the bench's 8, and a decoy cache entry (same labels, another reference) sorts first."""
    votes = []
    for i in range(80):
        row = [0] * 10
        row[2 * (i % 4)], row[2 * ((i + 1) % 4)] = 7, 3
        votes.append(row)
    out, cache = tmp_path / "bench", tmp_path / "refs"
    result = run_benchmark(
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
    assert result["systems"]["plain_ce"]["samples_scored"] == len(scores)

    with pytest.raises(SystemExit, match="no cached plain reference"):
        extra_evidence.score_run(out, tmp_path / "elsewhere")
