"""`fercleaner score` end to end on tiny synthetic datasets: files on disk and their contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from run_fixtures import TINY_TRAINING
from typer.testing import CliRunner

from fercleaner.cli import app
from fercleaner.methods.poi_losses import js_uncertainty
from fercleaner.pipeline import score_dataset
from fercleaner.runs import read_run
from fercleaner.scoring import SCORE_COLUMNS, read_scores
from fercleaner.synth import LAYOUT_SPLITS, write_synthetic_dataset

TINY = TINY_TRAINING


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "faces"
    write_synthetic_dataset(root, n=80, layout="imagefolder", seed=0, noise_rate=0.2, size=32)
    return root


def test_score_command_writes_the_run_directory(faces, tmp_path):
    bad = faces / "train" / "happiness" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    run = tmp_path / "run"
    try:
        result = CliRunner().invoke(
            app,
            [
                "score",
                str(faces),
                "--out",
                str(run),
                "--recipe",
                "quick",
                *TINY,
                "score.dynamics=true",
            ],
        )
    finally:
        bad.unlink()
    assert result.exit_code == 0, result.output
    scores = read_scores(run / "scores.parquet")
    frame = scores.frame
    assert list(frame.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert "path" in frame.columns and frame["sample_id"].is_unique
    assert len(frame) == 80  # the broken image is excluded, every real one scored
    assert scores.metadata["method"] == "baseline"
    assert scores.metadata["layout"] == "imagefolder"
    assert scores.metadata["recipe"]["train"]["epochs"] == 1
    assert scores.metadata["dataset_root"] == str(faces)
    assert {"run_id", "dataset_fingerprint"} <= set(scores.metadata)
    assert any(c.startswith("dynamics_") for c in frame.columns)
    assert frame["label_quality"].between(0, 1).all()

    problems = pd.read_parquet(run / "problems.parquet")
    assert problems["sample_id"].astype(str).str.endswith("broken.png").any()
    info = json.loads((run / "run.json").read_text())
    assert info["classes"] == scores.classes
    assert info["counts"]["scored"] == 80 and info["counts"]["problems"] >= 1
    assert {"torch", "timm", "fercleaner"} <= set(info["versions"])
    assert info["seed"] == 0 and info["timings"]["total_s"] > 0
    dynamics = pd.read_parquet(run / "dynamics.parquet")
    assert set(dynamics["sample_id"]) == set(frame["sample_id"])
    # written an epoch at a time: one row group per epoch trained (here 1)
    assert pq.ParquetFile(run / "dynamics.parquet").metadata.num_row_groups == 1
    assert (run / "events.parquet").is_file()
    assert (run / "checkpoints" / "baseline" / "fold0.pt").is_file()
    assert f"fercleaner review {run}" in " ".join(result.output.split())


def test_bad_override_is_one_line_error(faces, tmp_path):
    result = CliRunner().invoke(
        app, ["score", str(faces), "--out", str(tmp_path / "r"), "train.epochz=1"]
    )
    assert result.exit_code == 2
    assert "train.epochz: unknown key" in result.output
    assert not (tmp_path / "r" / "scores.parquet").exists()


def test_unknown_method_is_named(faces, tmp_path):
    result = CliRunner().invoke(
        app, ["score", str(faces), "--out", str(tmp_path / "r"), "--method", "basline"]
    )
    assert result.exit_code == 2
    assert "did you mean 'baseline'" in result.output.lower()


@pytest.mark.parametrize("layout", sorted(LAYOUT_SPLITS))
def test_every_synthetic_layout_scores(layout, tmp_path):
    root = tmp_path / layout
    size = 48 if layout == "fer2013" else 32
    write_synthetic_dataset(root, n=40, layout=layout, seed=1, noise_rate=0.2, size=size)
    result = score_dataset(
        root, tmp_path / "run", recipe="quick", overrides=[*TINY, f"data.image_size={size}"]
    )
    truth = pd.read_parquet(root.with_name(root.name + ".truth.parquet"))
    assert set(result.scores["sample_id"]) == set(truth["sample_id"])
    assert result.run_info["layout"] == layout
    assert result.run_info["sources"] == ["baseline"]  # no dynamics source unless asked
    # the run opens for review and export: every image path lies under the recorded root
    assert len(read_run(tmp_path / "run").scores) == len(result.scores)


def test_method_all_puts_baseline_first_and_lists_keep_order():
    from fercleaner.pipeline.checks import list_method_names

    assert list_method_names("all", ["uapl", "mtac", "baseline", "poi"]) == [
        "baseline",
        "mtac",
        "poi",
        "uapl",
    ]
    assert list_method_names("mtac, baseline", []) == ["mtac", "baseline"]


def test_resume_of_a_finished_run_reuses_its_checkpoint(faces, tmp_path):
    first = score_dataset(faces, tmp_path / "run", recipe="quick", overrides=TINY)
    again = score_dataset(faces, tmp_path / "run", recipe="quick", overrides=TINY, resume=True)
    assert again.run_info["training"][0]["images_trained"] == 0  # nothing left to train
    pd.testing.assert_series_equal(first.scores["label_quality"], again.scores["label_quality"])


def test_weights_file_is_loaded_and_recorded(faces, tmp_path):
    import timm
    from safetensors.torch import save_file

    weights = tmp_path / "backbone.safetensors"
    save_file(timm.create_model("test_resnet", in_chans=3).state_dict(), str(weights))
    result = score_dataset(faces, tmp_path / "run", recipe="quick", overrides=TINY, weights=weights)
    assert result.run_info["recipe"]["backbone"]["weights"] == str(weights)
    missing = CliRunner().invoke(
        app,
        [
            "score",
            str(faces),
            "--out",
            str(tmp_path / "r2"),
            "--weights",
            str(tmp_path / "no.pth"),
            *TINY,
        ],
    )
    assert missing.exit_code == 2
    assert "does not exist" in missing.output


def test_the_default_recipe_ranks_by_poi_and_its_late_training_margins(faces, tmp_path):
    result = score_dataset(
        faces,
        tmp_path / "run",
        overrides=[*TINY, "train.epochs=2"],
    )
    assert result.run_info["sources"] == ["poi", "dynamics"]
    frame = result.scores
    prior_network = frame["poi_label_quality_signal"].to_numpy()
    late = frame["dynamics_label_quality_signal"].to_numpy()
    # the order is the mean of the two sources' percentile ranks, not the model's alone
    both = (pd.Series(prior_network).rank() + pd.Series(late).rank()).to_numpy()
    quality = frame["label_quality"].to_numpy()[np.argsort(both, kind="stable")]
    assert (np.diff(quality) >= -1e-9).all()  # equal rank sums may differ in the last bits
    assert len(np.unique(quality)) > len(np.unique(prior_network)) / 2
    assert frame["dynamics_margin_late"].notna().all()
    # POI's quality is its prior network's belief in the given label, and q is the soft label
    np.testing.assert_allclose(prior_network, frame["poi_pin_given_prob"].to_numpy(), atol=1e-6)
    # (POI's uncertainty is JS(q, given) by its own function, so it pins the soft label to q)
    soft = torch.from_numpy(np.stack(frame["soft_label"].to_list()))
    given = torch.tensor(frame["given_label"].map(result.classes.index).to_numpy())
    np.testing.assert_allclose(
        js_uncertainty(soft, given).numpy(), frame["poi_uncertainty"].to_numpy(), atol=1e-5
    )


def test_score_takes_allow_outside_root_like_inspect(tmp_path, monkeypatch):
    seen = {}

    def fake_score_dataset(*args, **kwargs):
        seen.update(kwargs)
        return None  # what a non-zero torchrun rank returns: no summary

    monkeypatch.setattr("fercleaner.pipeline.score_dataset", fake_score_dataset)
    argv = ["score", str(tmp_path), "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(app, argv).exit_code == 0
    assert seen["allow_outside_root"] is False
    result = CliRunner().invoke(app, [*argv, "--allow-outside-root"])
    assert result.exit_code == 0, result.output
    assert seen["allow_outside_root"] is True


def test_a_dataset_whose_every_image_fails_to_decode_says_so(tmp_path):
    """Not "no samples in the training splits ... set data.splits", which sent users astray."""
    for name in ("happy", "sad"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "faces" / name / f"{i}.png").write_bytes(b"not a png at all")
    argv = ["score", str(tmp_path / "faces"), "--out", str(tmp_path / "run"), *TINY]
    result = CliRunner().invoke(app, argv)
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "none of the 6 images of" in message and "could be decoded" in message
    assert "is not an image PIL can identify" in message and "data.splits" not in message


def test_a_class_without_training_images_is_named_after_scoring(tmp_path):
    """Its images are flagged because the model never learned the class: say so."""
    root = tmp_path / "faces"
    write_synthetic_dataset(root, n=60, layout="csv", seed=1, noise_rate=0.0, size=32)
    manifest = pd.read_csv(root / "labels.csv")
    only_tested = manifest["label"].value_counts().index[0]
    manifest.loc[manifest["label"] == only_tested, "split"] = "test"
    manifest.to_csv(root / "labels.csv", index=False)
    argv = ["score", str(root), "--out", str(tmp_path / "run"), "--recipe", "quick", *TINY]
    result = CliRunner().invoke(app, [*argv, "data.splits=[train,val]"])
    assert result.exit_code == 0, result.output
    n = int((manifest["label"] == only_tested).sum())
    message = " ".join(result.output.split())
    assert f"{only_tested}: {n} image(s), none in the training splits" in message
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["untrained_classes"] == {only_tested: n}
    plain = CliRunner().invoke(app, [*argv[:3], str(tmp_path / "run2"), *argv[4:]])
    assert plain.exit_code == 0 and "none in the training splits" not in plain.output
