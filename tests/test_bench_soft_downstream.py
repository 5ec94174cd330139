"""Soft vs hard training targets downstream (issue 10, part 4): targets, metrics, one real run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _dataset_files import write_ferplus_valid
from run_fixtures import TINY_TRAINING

from fercleaner.bench import run_benchmark, soft_downstream
from fercleaner.bench.metrics import get_soft_label_metrics
from fercleaner.bench.plain_reference import PlainRecipe, predict_flip_averaged, train_plain_model
from fercleaner.bench.soft_downstream import (
    VARIANTS,
    compare_targets,
    get_holdout_metrics,
    get_training_targets,
    main,
    summarise,
)
from fercleaner.cache import build_cache
from fercleaner.datasets import read_dataset
from fercleaner.scoring import read_scores

TINY = PlainRecipe(backbone="test_resnet", image_size=32, epochs=1, batch_size=8)


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 1), dtype=np.uint8)


def test_one_hot_distributions_train_the_same_model_as_class_indices():
    images, labels = _images(24), np.arange(24) % 3
    hard = train_plain_model(images, labels, num_classes=3, recipe=TINY, seed=0)
    one_hot = np.eye(3, dtype=np.float32)[labels]
    soft = train_plain_model(images, one_hot, num_classes=3, recipe=TINY, seed=0)
    np.testing.assert_allclose(
        predict_flip_averaged(hard, images), predict_flip_averaged(soft, images), atol=1e-3
    )
    # and a distribution is really trained on, not rounded to its argmax
    flat = train_plain_model(images, np.full((24, 3), 1 / 3), num_classes=3, recipe=TINY, seed=0)
    assert not np.allclose(predict_flip_averaged(flat, images), predict_flip_averaged(hard, images))


def test_holdout_metrics_on_hand_made_arrays():
    probs = np.array([[0.8, 0.2], [0.4, 0.6], [0.9, 0.1]])
    metrics = get_holdout_metrics(
        probs, np.array([0, 0, 0]), votes=np.array([[8, 2], [4, 6], [10, 0]])
    )
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["nll"] == pytest.approx(-np.log([0.8, 0.4, 0.9]).mean())
    # the first two predictions are the vote shares exactly: only the third row costs
    assert metrics["kl_votes"] == pytest.approx(np.log(1 / 0.9) / 3, abs=1e-6)
    assert "kl_votes" not in get_holdout_metrics(probs, np.array([0, 1, 0]))


def test_summary_gives_mean_and_sd_per_variant():
    runs = [
        {
            "variants": {
                "given": {"accuracy": 0.5, "nll": 1.0},
                "soft": {"accuracy": 0.6, "nll": 0.9},
            }
        },
        {
            "variants": {
                "given": {"accuracy": 0.7, "nll": 1.2},
                "soft": {"accuracy": 0.6, "nll": 0.7},
            }
        },
    ]
    summary = summarise(runs)
    assert list(summary) == ["given", "soft"]
    assert summary["given"]["accuracy"]["mean"] == pytest.approx(0.6)
    assert summary["given"]["accuracy"]["sd"] == pytest.approx(math.sqrt(0.02))
    assert summary["soft"]["nll"]["mean"] == pytest.approx(0.8)
    assert summary["soft"]["nll"]["runs"] == 2


def test_summary_averages_a_metric_over_the_runs_that_have_it():
    """A bench output whose truth keeps votes beside one without (or with KL NaN)."""
    with_votes = {"variants": {"given": {"accuracy": 0.5, "kl_votes": 0.4}}}
    without = {"variants": {"given": {"accuracy": 0.7}}}
    nan_kl = {"variants": {"given": {"accuracy": 0.6, "kl_votes": float("nan")}}}
    summary = summarise([with_votes, without, nan_kl])["given"]
    assert summary["accuracy"] == {"mean": pytest.approx(0.6), "sd": pytest.approx(0.1), "runs": 3}
    assert summary["kl_votes"] == {"mean": pytest.approx(0.4), "sd": 0.0, "runs": 1}


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory):
    """A real (tiny) fercleaner run on FERPlus-style annotator noise, no references."""
    root = tmp_path_factory.mktemp("soft")
    votes = []
    for i in range(64):
        row = [0] * 10
        row[i % 4], row[(i + 1) % 4] = 6, 4  # neutral, happiness, surprise, sadness
        votes.append(row)
    out = root / "bench"
    run_benchmark(
        write_ferplus_valid(root, votes),
        out=out,
        protocol="annotator",
        seed=0,
        splits=["val"],
        references=[],
        overrides=TINY_TRAINING,
    )
    return out


def test_targets_are_what_export_writes(bench_out):
    found = get_training_targets(bench_out, variants=VARIANTS)
    scores = read_scores(bench_out / "runs" / "fercleaner" / "scores.parquet").frame
    # rows in the truth file's order, not the run's most-suspect-first storage, so that a
    # seed draws the same hold-out whatever order a run stores its rows in
    truth_order = pd.read_parquet(bench_out / "noisy" / "truth.parquet")["sample_id"]
    assert list(found["sample_ids"]) == truth_order.astype(str).tolist()
    assert list(found["sample_ids"]) != scores["sample_id"].astype(str).tolist()
    scores = scores.set_index("sample_id").loc[found["sample_ids"]]
    classes = found["classes"]
    targets = found["targets"]
    assert list(targets) == ["given", "relabel", "soft", "soft_all", "majority"]
    given = scores["given_label"].map(classes.index).to_numpy()
    np.testing.assert_array_equal(targets["given"].argmax(1), given)
    flagged = scores["is_label_issue"].to_numpy(bool)
    # relabel: flagged `mislabeled` rows take the proposal, the rest keep the given label
    proposed = scores["proposed_label"].map(classes.index).to_numpy()
    relabeled = flagged & (scores["issue_type"] == "mislabeled").to_numpy()
    assert relabeled.any() and (flagged & ~relabeled).any()  # the fixture has both kinds
    np.testing.assert_array_equal(
        targets["relabel"].argmax(1), np.where(relabeled, proposed, given)
    )
    # soft: flagged rows train on the run's soft label, the rest on the given one-hot
    soft = np.stack(scores["soft_label"].to_list())
    soft = soft / soft.sum(1, keepdims=True)
    np.testing.assert_allclose(targets["soft"][flagged], soft[flagged], atol=1e-6)
    np.testing.assert_array_equal(targets["soft"][~flagged], targets["given"][~flagged])
    np.testing.assert_allclose(targets["soft_all"], soft, atol=1e-6)
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet").set_index("sample_id")
    np.testing.assert_array_equal(
        targets["majority"].argmax(1),
        truth.loc[found["sample_ids"], "true_label"].map(classes.index).to_numpy(),
    )


def test_compare_targets_trains_each_variant_and_scores_the_holdout(bench_out, tmp_path, capsys):
    report = compare_targets(
        bench_out, holdout=0.25, recipe=TINY, variants=["majority", "given", "soft"]
    )
    n = report["train_samples"] + report["holdout_samples"]
    assert n == len(read_scores(bench_out / "runs" / "fercleaner" / "scores.parquet").frame)
    assert report["holdout_samples"] == pytest.approx(0.25 * n, abs=4)  # rounded per class
    assert list(report["variants"]) == ["given", "soft", "majority"]  # in report order
    # annotator noise: some training labels differ from the truth, none from themselves
    assert report["changed_rows"]["given"] == 0 < report["changed_rows"]["majority"]
    for name, metrics in report["variants"].items():
        assert 0 <= metrics["accuracy"] <= 1 and metrics["nll"] > 0, name
        assert metrics["kl_votes"] >= 0 and metrics["wall_s"] > 0, name
    # the command line writes the same figures, with a summary, to --out
    path = tmp_path / "soft.json"
    assert main([str(bench_out), "--epochs", "1", "--holdout", "0.25", "--out", str(path)]) == 0
    assert '"summary"' in path.read_text() and '"relabel"' in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown target variants"):
        get_training_targets(bench_out, variants=["given", "votes"])


def test_a_missing_system_names_the_runs_there(bench_out):
    with pytest.raises(ValueError, match=r"runs there: \['fercleaner'\]; pass --system fercleaner"):
        get_training_targets(bench_out, system="fercleaner_votes")


def test_changed_rows_count_against_the_given_labels_without_training_them(bench_out, monkeypatch):
    monkeypatch.setattr(soft_downstream, "train_plain_model", lambda *a, **k: None)
    monkeypatch.setattr(
        soft_downstream, "predict_flip_averaged", lambda _, images: np.full((len(images), 4), 0.25)
    )
    report = compare_targets(bench_out, holdout=0.25, recipe=TINY, variants=["majority"])
    noisy = pd.read_parquet(bench_out / "noisy" / "truth.parquet")["is_noisy"].to_numpy(bool)
    assert list(report["variants"]) == ["majority"]
    assert 0 < report["changed_rows"]["majority"] <= noisy.sum()


def test_no_holdout_row_is_trained_on_and_scores_meet_their_own_truth(bench_out, monkeypatch):
    """An oracle stands in for the classifier: it knows every image's true class, so the
    held-out accuracy is 1 only if images, truth and votes stay on the same rows."""
    samples = read_dataset(bench_out / "noisy" / "dataset" / "labels.csv").samples
    cache = build_cache(samples, size=TINY.image_size, channels=1)
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet").set_index("sample_id")
    classes = read_scores(bench_out / "runs" / "fercleaner" / "scores.parquet").classes
    ids = samples["sample_id"].astype(str).tolist()
    oracle = {
        cache.images[row].tobytes(): classes.index(truth.loc[sid, "true_label"])
        for sid, row in zip(ids, cache.rows(ids), strict=True)
    }
    trained, predicted = [], []

    def train(images, targets, *, num_classes, **_):
        keys = [image.tobytes() for image in images]
        # the majority targets stay on their images: each is its image's true class
        assert list(targets.argmax(1)) == [oracle[k] for k in keys]
        trained.extend(keys)
        return num_classes

    def predict(num_classes, images):
        predicted.extend(image.tobytes() for image in images)
        return np.eye(num_classes)[[oracle[image.tobytes()] for image in images]]

    monkeypatch.setattr(soft_downstream, "train_plain_model", train)
    monkeypatch.setattr(soft_downstream, "predict_flip_averaged", predict)
    report = compare_targets(bench_out, holdout=0.25, recipe=TINY, variants=["majority"])
    metrics = report["variants"]["majority"]
    assert metrics["accuracy"] == 1.0 and metrics["nll"] == pytest.approx(0.0, abs=1e-9)
    assert len(trained) == report["train_samples"] and len(predicted) == report["holdout_samples"]
    assert len(set(trained) | set(predicted)) == len(ids)  # disjoint, every image once
    # every face has 6 votes for its true class and 4 for one other: one KL for all rows
    one_row = get_soft_label_metrics(np.array([[6, 4]]), np.array([[1.0, 0.0]]), np.zeros(1))
    assert metrics["kl_votes"] == pytest.approx(one_row["kl_votes_soft"])
