"""User predictions files: three formats, aligned to the dataset, every bad input a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fercleaner.predictions import PredictionsError, read_predictions

CLASSES = ["neutral", "happiness", "anger"]
IDS = ["a.png", "b.png", "c.png"]
PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])


def _parquet(path, ids=IDS, probs=PROBS, columns=CLASSES, embedding=None):
    frame = pd.DataFrame(probs, columns=columns).assign(sample_id=ids)
    if embedding is not None:
        frame["embedding"] = list(embedding)
    frame.to_parquet(path)
    return path


def _garbage(path):
    path.write_bytes(b"garbage")
    return path


def _npy(path):
    dtype = [("sample_id", "U16")] + [(c, "f8") for c in CLASSES]
    array = np.array([(i, *row) for i, row in zip(IDS, PROBS, strict=True)], dtype=dtype)
    np.save(path, array)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "npz", "npy"])
def test_every_format_aligns_rows_to_the_requested_ids(tmp_path, fmt):
    if fmt == "parquet":
        path = _parquet(tmp_path / "p.parquet", embedding=np.eye(3))
    elif fmt == "npz":
        path = tmp_path / "p.npz"
        np.savez(path, sample_id=np.array(IDS), pred_probs=PROBS, embeddings=np.eye(3))
    else:
        path = _npy(tmp_path / "p.npy")
    wanted = ["c.png", "a.png"]  # another order, and one row of the file not asked for
    got = read_predictions(path, classes=CLASSES, sample_ids=wanted)
    np.testing.assert_allclose(got.pred_probs, PROBS[[2, 0]])
    assert got.ignored_ids == 1
    if fmt != "npy":
        np.testing.assert_allclose(got.embeddings, np.eye(3)[[2, 0]])


def test_parquet_columns_are_matched_by_class_name(tmp_path):
    path = _parquet(tmp_path / "p.parquet", probs=PROBS[:, ::-1], columns=CLASSES[::-1])
    got = read_predictions(path, classes=CLASSES, sample_ids=IDS)
    np.testing.assert_allclose(got.pred_probs, PROBS)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "p.csv", "unknown predictions format '.csv'"),
        (lambda d: d / "absent.parquet", "no such predictions file"),
        (
            lambda d: _parquet(d / "p.parquet", ids=["a.png", "b.png", "b.png"]),
            "'b.png' appears more than once",
        ),
        (
            lambda d: _parquet(d / "p.parquet", ids=["a.png", "b.png", "x.png"]),
            "no prediction for 1 of the dataset's 3 images \\(first: 'c.png'\\)",
        ),
        (
            lambda d: _parquet(d / "p.parquet", columns=["neutral", "happy", "anger"]),
            "missing \\['happiness'\\], unexpected \\['happy'\\]",
        ),
        (
            lambda d: _parquet(d / "p.parquet", probs=PROBS * 2),
            "3 rows are not probability vectors .*softmax",
        ),
        (lambda d: _garbage(d / "p.parquet"), "cannot be read as predictions"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(PredictionsError, match=message):
        read_predictions(path, classes=CLASSES, sample_ids=IDS)


def test_npz_without_ids_and_plain_npy_say_how_to_save(tmp_path):
    np.savez(tmp_path / "p.npz", pred_probs=PROBS)
    with pytest.raises(PredictionsError, match="lacks arrays \\['sample_id'\\]"):
        read_predictions(tmp_path / "p.npz", classes=CLASSES, sample_ids=IDS)
    np.save(tmp_path / "p.npy", PROBS)
    with pytest.raises(PredictionsError, match="a plain array has no sample ids"):
        read_predictions(tmp_path / "p.npy", classes=CLASSES, sample_ids=IDS)


def test_npz_with_fewer_ids_than_rows_is_refused_not_misaligned(tmp_path):
    np.savez(tmp_path / "p.npz", sample_id=np.array(IDS[:2]), pred_probs=PROBS)
    with pytest.raises(PredictionsError, match="sample_id has shape \\(2,\\) but pred_probs has 3"):
        read_predictions(tmp_path / "p.npz", classes=CLASSES, sample_ids=IDS[:2])


def _faces_and_predictions(tmp_path, *, drop: int = 0, rounding: float = 0.0):
    """40 synthetic faces with planted flips, and predictions that know the clean labels."""
    from fercleaner.datasets import read_dataset
    from fercleaner.synth import write_synthetic_dataset

    faces = write_synthetic_dataset(
        tmp_path / "faces", n=40, layout="imagefolder", seed=2, noise_rate=0.25, size=16, workers=1
    )
    truth = pd.read_parquet(tmp_path / "faces.truth.parquet").set_index("sample_id")
    dataset = read_dataset(faces)
    classes = list(dataset.classes)
    ids = dataset.samples["sample_id"].astype(str).tolist()[drop:]
    probs = np.full((len(ids), len(classes)), 0.02)
    for row, sample_id in enumerate(ids):
        probs[row, classes.index(truth.loc[sample_id, "clean_label"])] = 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    if rounding:  # a float32 softmax's rounding: tiny negatives the reader lets through
        small = probs[:, -1] < 0.5
        probs[small, 0] += probs[small, -1] + rounding
        probs[small, -1] = -rounding
    path = tmp_path / "preds.npz"
    np.savez(path, sample_id=np.array(ids), pred_probs=probs)
    return faces, path, truth


def test_score_with_predictions_trains_nothing_and_finds_the_planted_flips(tmp_path):
    from typer.testing import CliRunner

    from fercleaner.cli import app
    from fercleaner.runs import read_run

    faces, path, truth = _faces_and_predictions(tmp_path)
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["score", str(faces), "--out", str(run), "--predictions", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert f"from {path}" in result.output
    scores = read_run(run).scores.set_index("sample_id")
    flipped = truth.index[truth["is_noisy"]]
    assert set(scores.index[scores["is_label_issue"]]) == set(flipped)
    assert (scores.loc[flipped, "proposed_label"] == truth.loc[flipped, "clean_label"]).all()
    assert not (run / "checkpoints").exists()
    # out-of-sample probabilities: cleanlab's flag rule, not the default recipe's argmax
    assert read_run(run).metadata["recipe"]["score"]["flag_rule"] == "noise_rate"
    exported = CliRunner().invoke(app, ["export", str(run), "--out", str(tmp_path / "clean")])
    assert exported.exit_code == 0, exported.output


def test_score_with_predictions_refuses_training_options_and_missing_rows(tmp_path):
    from typer.testing import CliRunner

    from fercleaner.cli import app

    faces, path, _ = _faces_and_predictions(tmp_path, drop=3)
    runner = CliRunner()
    argv = ["score", str(faces), "--out", str(tmp_path / "run"), "--predictions", str(path)]
    missing = runner.invoke(app, argv)
    assert missing.exit_code == 2
    assert "no prediction for 3 of the dataset's 40 images" in " ".join(missing.output.split())
    with_method = runner.invoke(app, [*argv, "--method", "mtac"])
    assert with_method.exit_code == 2 and "--method, --weights and --resume" in with_method.output


def test_predictions_with_rounding_negatives_make_a_run_that_exports(tmp_path):
    from typer.testing import CliRunner

    from fercleaner.cli import app
    from fercleaner.runs import read_run

    faces, path, _ = _faces_and_predictions(tmp_path, rounding=5e-7)
    run = tmp_path / "run"
    runner = CliRunner()
    scored = runner.invoke(
        app, ["score", str(faces), "--out", str(run), "--predictions", str(path)]
    )
    assert scored.exit_code == 0, scored.output
    written = np.stack(read_run(run).scores["pred_probs"].to_numpy())
    assert (written >= 0).all() and np.allclose(written.sum(axis=1), 1)
    exported = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "clean")])
    assert exported.exit_code == 0, exported.output


def test_scoring_another_dataset_into_a_reviewed_run_is_refused(tmp_path):
    """Review decisions are keyed by sample id: another dataset's ids would inherit them."""
    from typer.testing import CliRunner

    from fercleaner.cli import app
    from fercleaner.review import Decision, DecisionStore
    from fercleaner.runs import read_run

    faces, path, _ = _faces_and_predictions(tmp_path / "a")
    run = tmp_path / "run"
    runner = CliRunner()
    argv = ["score", str(faces), "--out", str(run), "--predictions", str(path)]
    assert runner.invoke(app, argv).exit_code == 0
    first = read_run(run).scores.iloc[0]
    with DecisionStore(run / "review.sqlite") as store:
        store.record(Decision(first["sample_id"], "exclude"), reviewer="ann")
    again = runner.invoke(app, argv)  # the same dataset, scored again: decisions still apply
    assert again.exit_code == 0, again.output

    other, other_path, _ = _faces_and_predictions(tmp_path / "b")
    argv = ["score", str(other), "--out", str(run), "--predictions", str(other_path)]
    refused = runner.invoke(app, argv)
    message = " ".join(refused.output.split())
    assert refused.exit_code == 2, refused.output
    assert "holds review decisions (review.sqlite)" in message and "new folder" in message
    assert read_run(run).metadata["dataset_root"] == str(faces)  # nothing was rewritten
    trained = runner.invoke(app, ["score", str(other), "--out", str(run), "--recipe", "quick"])
    assert trained.exit_code == 2 and "holds review decisions" in " ".join(trained.output.split())


def test_predictions_keep_a_flag_rule_the_user_chose_in_an_override_or_own_recipe(tmp_path):
    from typer.testing import CliRunner

    from fercleaner.cli import app
    from fercleaner.runs import read_run

    faces, path, _ = _faces_and_predictions(tmp_path)
    own = tmp_path / "mine.yaml"
    own.write_text("score:\n  flag_rule: argmax\n")
    runner = CliRunner()
    for extra, rule in (
        ([], "noise_rate"),  # the shipped default's argmax is for in-sample training
        (["score.flag_rule=argmax"], "argmax"),
        (["--recipe", str(own)], "argmax"),
        (["--recipe", "quick"], "noise_rate"),
    ):
        run = tmp_path / f"run-{len(extra)}-{rule}"
        argv = ["score", str(faces), "--out", str(run), "--predictions", str(path), *extra]
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        assert read_run(run).metadata["recipe"]["score"]["flag_rule"] == rule, extra
