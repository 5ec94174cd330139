"""`bench/issue_type_synth.py`: planted flips next to ambiguous faces, and the split metric."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _bench_helpers import load_bench_script

from fercleaner.synth import generate_faces

issue_type_synth = load_bench_script("issue_type_synth")

CLASSES = ["neutral", "happiness", "surprise", "sadness"]


def _truth(n: int = 400) -> pd.DataFrame:
    _, truth = generate_faces(n, seed=3, size=16, classes=CLASSES, ambiguity_rate=0.4, workers=1)
    return truth.assign(sample_id=[f"images/{i:06d}.png" for i in range(n)])


def test_flips_fall_on_clear_faces_and_mixed_faces_get_one_of_their_two_expressions():
    truth = _truth()
    planted = issue_type_synth.plant_labels(truth, CLASSES, flip_rate=0.25, seed=0)
    kind = planted["kind"].to_numpy()
    clear = ~truth["ambiguous"].to_numpy()
    given, clean = planted["given_label"].to_numpy(), truth["clean_label"].astype(str).to_numpy()
    assert (kind[clear] != "flipped").sum() == clear.sum() - round(0.25 * clear.sum())
    assert (given[kind == "flipped"] != clean[kind == "flipped"]).all()
    assert (given[kind == "clear"] == clean[kind == "clear"]).all()
    mixed = np.flatnonzero(~clear)
    for row in mixed:
        soft = np.asarray(truth["soft_label"].iloc[row])
        assert soft[CLASSES.index(given[row])] > 0  # never a class the face does not show
    minor = kind == "ambiguous_given_minor"
    assert 0 < minor.sum() < (~clear).sum() / 2  # the minority expression, now and then
    assert (given[minor] != clean[minor]).all()
    again = issue_type_synth.plant_labels(truth, CLASSES, flip_rate=0.25, seed=0)
    pd.testing.assert_frame_equal(planted, again)


def test_split_metrics_on_hand_made_flags():
    kind = np.array(
        ["flipped"] * 4
        + ["ambiguous_given_minor"] * 2
        + ["ambiguous_given_major"] * 2
        + ["clear"] * 4
    )
    flags = np.array([1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0], dtype=bool)
    issue_type = np.array(
        [
            "mislabeled",
            "mislabeled",
            "ambiguous",
            "none",
            "mislabeled",
            "ambiguous",
            "ambiguous",
            "none",
        ]
        + ["ambiguous", "mislabeled", "none", "none"],
        dtype=object,
    )
    metrics = issue_type_synth.get_split_metrics(flags, issue_type, kind)
    assert metrics["flagged"] == 8
    mislabeled = metrics["mislabeled"]
    # 4 typed mislabeled (2 flips, 1 mixed face, 1 clear face); 3 of the 8 flagged are flips
    assert mislabeled["count"] == 4
    assert mislabeled["precision"] == pytest.approx(0.5)
    assert mislabeled["base_rate"] == pytest.approx(3 / 8)
    assert mislabeled["lift"] == pytest.approx(0.5 / (3 / 8))
    assert mislabeled["max_lift"] == pytest.approx(8 / 3)
    assert mislabeled["recall_among_flagged"] == pytest.approx(2 / 3)
    ambiguous = metrics["ambiguous"]
    # 4 typed ambiguous: a flip, two mixed faces, a clear face; 3 of the 8 flagged are mixed
    assert ambiguous["count"] == 4
    assert ambiguous["precision"] == pytest.approx(0.5)
    assert ambiguous["base_rate"] == pytest.approx(3 / 8)
    assert ambiguous["recall_among_flagged"] == pytest.approx(2 / 3)
    assert metrics["confusion"]["mislabeled"] == {
        "clear": 1,
        "flipped": 2,
        "ambiguous_given_major": 0,
        "ambiguous_given_minor": 1,
    }
    assert sum(metrics["confusion"]["ambiguous"].values()) == 4


def test_main_scores_each_seed_once_and_reports_the_mean(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--n", "64", "--seeds", "0", "--ambiguity", "0.5"]
    argv += ["--score-args", "--recipe quick train.epochs=1 train.batch_size=32"]
    assert issue_type_synth.main(argv) == 0
    first = json.loads((tmp_path / "issue_type_synth.json").read_text())
    (run,) = first["runs"]
    assert run["samples"] == 64 and sum(run["kinds"].values()) == 64
    assert run["score_wall_s"] > 0
    assert first["summary"]["mislabeled"]["count"]["runs"] == 1
    capsys.readouterr()
    written = (tmp_path / "seed0" / "run" / "scores.parquet").stat().st_mtime_ns
    assert issue_type_synth.main(argv) == 0  # the finished seed is read, not scored again
    again = json.loads(capsys.readouterr().out)
    assert (tmp_path / "seed0" / "run" / "scores.parquet").stat().st_mtime_ns == written
    assert again["runs"][0]["score_wall_s"] == run["score_wall_s"]  # from the run's record
    other = ["--out", str(tmp_path), "--n", "80", "--seeds", "0", "--ambiguity", "0.5"]
    with pytest.raises(SystemExit, match="was made with .*give --out another folder"):
        issue_type_synth.main([*other, *argv[-2:]])
    assert again["runs"][0]["confusion"] == run["confusion"]
