"""Synthetic faces: determinism, planted noise, soft labels, class-driven geometry, every layout."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fercleaner.bench import make_noisy
from fercleaner.classes import CANONICAL_CLASSES, FER2013_CODES, PAIRFLIP_PARTNERS, RAFDB_CODES
from fercleaner.errors import ConfigError, DatasetError
from fercleaner.priors import AU_IDS, AU_PROTOTYPES, au_column, get_au_prior_matrix
from fercleaner.synth import (
    LAYOUT_SPLITS,
    generate_faces,
    read_truth,
    truth_path,
    write_synthetic_dataset,
)
from fercleaner.synth.faces import render_aus
from fercleaner.synth.labels import force_plurality, simulate_votes

LAYOUTS = sorted(LAYOUT_SPLITS)


def test_same_seed_same_faces_other_seed_other_faces():
    a_img, a_truth = generate_faces(40, seed=7, occlusion_rate=0.3, ambiguity_rate=0.3)
    b_img, b_truth = generate_faces(40, seed=7, occlusion_rate=0.3, ambiguity_rate=0.3)
    c_img, _ = generate_faces(40, seed=8, occlusion_rate=0.3, ambiguity_rate=0.3)
    assert a_img.shape == (40, 48, 48) and a_img.dtype == np.uint8
    np.testing.assert_array_equal(a_img, b_img)
    pd.testing.assert_frame_equal(a_truth, b_truth)
    assert not np.array_equal(a_img, c_img)


def test_noise_options_do_not_change_the_pixels():
    clean_img, clean = generate_faces(30, seed=1)
    noisy_img, noisy = generate_faces(30, seed=1, noise_rate=0.5, noise_kind="pairflip")
    np.testing.assert_array_equal(clean_img, noisy_img)
    assert (clean["clean_label"] == noisy["clean_label"]).all()


def test_rgb_and_size():
    images, _ = generate_faces(5, seed=0, size=64, channels=3)
    assert images.shape == (5, 64, 64, 3)
    # colour, not grey copied three times
    assert np.abs(images[..., 0].astype(int) - images[..., 2]).mean() > 5


@pytest.mark.parametrize("kind", ["symmetric", "pairflip"])
def test_planted_noise_rate_is_exact_and_marked(kind):
    _, truth = generate_faces(400, seed=3, size=16, noise_rate=0.2, noise_kind=kind)
    assert truth["is_noisy"].sum() == 80
    assert ((truth["given_label"] != truth["clean_label"]) == truth["is_noisy"]).all()
    if kind == "pairflip":
        noisy = truth[truth["is_noisy"]]
        for clean, given in zip(noisy["clean_label"], noisy["given_label"], strict=True):
            assert given == PAIRFLIP_PARTNERS[clean][0]


def test_synth_and_bench_pairflip_flip_every_class_to_the_same_partner():
    """One table: `synth --noise-kind pairflip` and `bench --protocol pairflip` agree."""
    classes = ["neutral", "happiness", "sadness", "anger", "disgust", "contempt"]  # no fear
    _, truth = generate_faces(
        240, seed=2, size=16, classes=classes, noise_rate=0.4, noise_kind="pairflip"
    )
    noisy = truth[truth["is_noisy"]]
    synth_pairs = set(zip(noisy["clean_label"], noisy["given_label"], strict=True))
    samples = pd.DataFrame(
        {
            "sample_id": [f"{i}.png" for i in range(len(truth))],
            "path": "x",
            "split": "train",
            "given_label": truth["clean_label"],
        }
    )
    flipped = make_noisy(samples, classes, protocol="pairflip", rate=0.4, seed=0).truth
    flipped = flipped[flipped["is_noisy"]]
    bench_pairs = set(zip(flipped["true_label"], flipped["given_label"], strict=True))
    assert synth_pairs == bench_pairs
    assert len(synth_pairs) == len(classes)  # one partner per class
    assert ("sadness", "neutral") in synth_pairs and ("contempt", "neutral") in synth_pairs


def test_pairflip_without_a_partner_class_falls_back_to_another_class():
    _, truth = generate_faces(
        200,
        seed=0,
        size=16,
        classes=["happiness", "surprise"],
        noise_rate=0.3,
        noise_kind="pairflip",
    )
    noisy = truth[truth["is_noisy"]]
    assert len(noisy) == 60
    assert set(noisy["given_label"]) <= {"happiness", "surprise"}


def test_soft_labels_sum_to_one_and_ambiguity_mixes_two_classes():
    _, truth = generate_faces(300, seed=5, size=16, ambiguity_rate=0.5)
    soft = np.stack(truth["soft_label"].to_numpy())
    assert soft.shape == (300, len(CANONICAL_CLASSES))
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-6)
    clean_idx = [CANONICAL_CLASSES.index(c) for c in truth["clean_label"]]
    assert (soft.argmax(1) == clean_idx).all()
    n_nonzero = (soft > 0).sum(1)
    assert (n_nonzero[truth["ambiguous"].to_numpy()] == 2).all()
    assert (n_nonzero[~truth["ambiguous"].to_numpy()] == 1).all()
    assert 0.35 < truth["ambiguous"].mean() < 0.65


def test_aus_follow_the_class_prototypes():
    _, truth = generate_faces(400, seed=2, size=16)
    means = truth.groupby("clean_label")[[au_column(a) for a in AU_IDS]].mean()
    for cls, proto in AU_PROTOTYPES.items():
        for au, weight in proto.items():
            if weight == 1.0:
                assert means.loc[cls, au_column(au)] > 0.5, (cls, au)
    assert means.loc["neutral"].max() < 0.1
    va = truth.groupby("clean_label")[["valence", "arousal"]].mean()
    assert va.loc["happiness", "valence"] > 0.3 > va.loc["sadness", "valence"] + 0.6


def test_every_au_and_every_class_moves_the_geometry():
    """On one frontal identity, each AU alone and each pair of class prototypes differ visibly."""
    blank = np.zeros((1, len(AU_IDS)), np.float32)
    single = render_aus(np.vstack([blank, np.eye(len(AU_IDS))]), seed=0).astype(int)
    for k, au in enumerate(AU_IDS):
        assert (np.abs(single[k + 1] - single[0]) > 16).sum() >= 5, f"AU{au} changes nothing"
    for seed in range(3):
        faces = render_aus(get_au_prior_matrix(CANONICAL_CLASSES), seed=seed).astype(int)
        for i, j in itertools.combinations(range(len(CANONICAL_CLASSES)), 2):
            changed = (np.abs(faces[i] - faces[j]) > 16).sum()
            assert changed >= 8, (CANONICAL_CLASSES[i], CANONICAL_CLASSES[j], changed)


def test_faces_are_learnable_across_identities_and_poses():
    """A linear classifier on 24 px pixels beats chance (1/8) by far on held-out faces."""
    from sklearn.linear_model import RidgeClassifier

    images, truth = generate_faces(800, seed=11, workers=1)
    x = images.reshape(800, 24, 2, 24, 2).mean((2, 4)).reshape(800, -1).astype(np.float32)
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)
    y = truth["clean_label"].to_numpy()
    model = RidgeClassifier(alpha=10.0).fit(x[:600], y[:600])
    assert (model.predict(x[600:]) == y[600:]).mean() > 0.4


def test_occluders_at_the_requested_rate():
    _, truth = generate_faces(300, seed=4, size=16, occlusion_rate=0.4)
    assert 0.3 < truth["occluded"].mean() < 0.5
    assert set(truth["occluder"]) == {"none", "glasses", "hand"}
    assert ((truth["occluder"] != "none") == truth["occluded"]).all()


def test_votes_follow_the_soft_label_and_plurality_can_be_forced():
    rng = np.random.default_rng(0)
    soft = np.tile(np.float32([0.6, 0.4, 0.0]), (2000, 1))
    votes, unknown = simulate_votes(soft, rng=rng)
    assert ((votes.sum(1) + unknown) == 10).all()
    np.testing.assert_allclose(votes.mean(0) / 10, [0.585, 0.395, 0.005], atol=0.02)
    given = np.full(2000, 2)
    force_plurality(votes, unknown, given)
    assert ((votes.sum(1) + unknown) == 10).all()
    others = np.concatenate([votes[:, :2], unknown[:, None]], 1)
    assert (votes[:, 2] > others.max(1)).all()


def test_invalid_options_name_the_value(tmp_path):
    with pytest.raises(ConfigError, match="noise rate 1.5"):
        generate_faces(10, seed=0, noise_rate=1.5)
    with pytest.raises(ConfigError, match="noise kind 'flip'"):
        generate_faces(10, seed=0, noise_rate=0.1, noise_kind="flip")
    with pytest.raises(ConfigError, match="cannot encode classes \\['contempt'\\]"):
        write_synthetic_dataset(tmp_path / "d", n=10, layout="rafdb", seed=0, classes=["contempt"])
    with pytest.raises(ConfigError, match="48x48 grey"):
        write_synthetic_dataset(tmp_path / "d", n=10, layout="fer2013", seed=0, size=64)
    with pytest.raises(ConfigError, match="has no split"):
        write_synthetic_dataset(tmp_path / "d", n=10, layout="rafdb", seed=0, splits={"val": 1.0})
    with pytest.raises(ConfigError, match="sum to 1"):
        write_synthetic_dataset(tmp_path / "d", n=10, layout="csv", seed=0, splits=(0.5, 0.2, 0.1))
    assert not (tmp_path / "d").exists()


def _expected_files(layout: str) -> list[str]:
    return {
        "imagefolder": ["train", "val", "test"],
        "ferplus": ["FER2013Train/label.csv", "FER2013Valid/label.csv", "FER2013Test/label.csv"],
        "fer2013": ["fer2013.csv", "fer2013new.csv"],
        "rafdb": ["EmoLabel/list_patition_label.txt", "EmoLabel/distribution.txt", "Image/aligned"],
        "affectnet": ["training.csv", "validation.csv", "Manually_Annotated_Images"],
        "csv": ["labels.csv", "images"],
    }[layout]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_writes_its_files_and_truth_beside(tmp_path, layout):
    out = write_synthetic_dataset(
        tmp_path / "ds",
        n=48,
        layout=layout,
        seed=1,
        noise_rate=0.25,
        ambiguity_rate=0.3,
        occlusion_rate=0.2,
    )
    for rel in _expected_files(layout):
        assert (out / rel).exists(), rel
    assert not list(out.rglob("*.parquet")), "truth must not be inside the dataset"
    truth, meta = read_truth(truth_path(out))
    assert truth_path(out) == tmp_path / "ds.truth.parquet"
    assert len(truth) == 48 and truth["sample_id"].is_unique
    assert meta["seed"] == 1 and meta["noise_rate"] == 0.25 and meta["n_noisy"] == 12
    assert set(truth["split"]) == set(LAYOUT_SPLITS[layout])
    for sample_id in truth["sample_id"]:
        assert (out / sample_id.split("#")[0]).is_file()
    assert not list(tmp_path.glob(".ds.tmp-*")), "the temporary folder is cleaned up"


def test_layout_files_match_the_spec(tmp_path):
    out = write_synthetic_dataset(tmp_path / "fp", n=40, layout="ferplus", seed=2, noise_rate=0.3)
    truth, _ = read_truth(truth_path(out))
    with open(out / "FER2013Train" / "label.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    by_id = truth.set_index("sample_id")
    for name, box, *votes in rows:
        assert box == "(0, 0, 48, 48)" and len(votes) == 10 and sum(map(int, votes)) == 10
        given = by_id.loc[f"FER2013Train/{name}", "given_label"]
        assert CANONICAL_CLASSES[int(np.argmax([int(v) for v in votes[:8]]))] == given

    out = write_synthetic_dataset(tmp_path / "fer", n=20, layout="fer2013", seed=2)
    table = pd.read_csv(out / "fer2013.csv")
    assert list(table.columns) == ["emotion", "pixels", "Usage"]
    assert set(table["Usage"]) == {"Training", "PublicTest", "PrivateTest"}
    assert all(len(p.split()) == 48 * 48 for p in table["pixels"])
    truth, _ = read_truth(truth_path(out))
    assert [FER2013_CODES[c] for c in table["emotion"]] == list(truth["given_label"])
    new = pd.read_csv(out / "fer2013new.csv")
    assert list(new.columns)[:2] == ["Usage", "Image name"] and len(new) == len(table)

    out = write_synthetic_dataset(tmp_path / "raf", n=20, layout="rafdb", seed=2)
    truth, _ = read_truth(truth_path(out))
    lines = (out / "EmoLabel" / "list_patition_label.txt").read_text().split("\n")[:-1]
    for line, sample_id, label in zip(lines, truth["sample_id"], truth["given_label"], strict=True):
        name, code = line.split()
        assert sample_id == f"Image/aligned/{name[:-4]}_aligned.jpg"
        assert RAFDB_CODES[int(code)] == label


def test_affectnet_face_box_points_at_the_face(tmp_path):
    from PIL import Image

    out = write_synthetic_dataset(
        tmp_path / "an", n=6, layout="affectnet", seed=0, splits={"train": 1.0}
    )
    images, _ = generate_faces(6, seed=0, classes=list(CANONICAL_CLASSES))
    table = pd.read_csv(out / "training.csv")
    for i, row in table.iterrows():
        pixels = np.asarray(
            Image.open(out / "Manually_Annotated_Images" / row.subDirectory_filePath)
        )
        x, y, w, h = row.face_x, row.face_y, row.face_width, row.face_height
        crop = pixels[y : y + h, x : x + w].astype(int)
        assert np.abs(crop - images[i]).mean() < 4  # JPEG loss only


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_reader_sees_the_written_truth(tmp_path, layout):
    from fercleaner.datasets import read_dataset

    out = write_synthetic_dataset(
        tmp_path / "ds", n=40, layout=layout, seed=6, noise_rate=0.2, ambiguity_rate=0.4
    )
    truth, _ = read_truth(truth_path(out))
    data = read_dataset(out)
    assert data.layout == layout and len(data.problems) == 0
    got = data.samples.set_index("sample_id").sort_index()
    want = truth.set_index("sample_id").sort_index()
    assert list(got.index) == list(want.index)
    assert (got["given_label"] == want["given_label"]).all()
    assert (got["split"] == want["split"]).all()


def test_rerun_replaces_an_earlier_synthetic_dataset_but_nothing_else(tmp_path):
    out = tmp_path / "ds"
    write_synthetic_dataset(out, n=16, layout="imagefolder", seed=0)
    write_synthetic_dataset(out, n=8, layout="csv", seed=1)
    truth, meta = read_truth(truth_path(out))
    assert meta["layout"] == "csv" and len(truth) == 8 and not (out / "train").exists()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(DatasetError, match="not an earlier synthetic dataset"):
        write_synthetic_dataset(foreign, n=8, layout="csv", seed=0)
    assert (foreign / "keep.txt").read_text() == "precious"


def test_cli_writes_the_dataset_and_reports_the_truth_file(tmp_path):
    from fercleaner.cli import app

    out = tmp_path / "faces"
    args = ["synth", str(out), "--n", "24", "--noise", "0.25", "--noise-kind", "pairflip"]
    args += ["--layout", "ferplus", "--seed", "3", "--occlusion", "0.5", "--ambiguity", "0.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "truth" in result.output and "faces.truth.parquet" in result.output
    truth, meta = read_truth(truth_path(out))
    assert meta["noise_kind"] == "pairflip" and truth["is_noisy"].sum() == 6

    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--layout", "nope"])
    assert bad.exit_code == 2 and "unknown layout 'nope'" in bad.output


def test_write_progress_reaches_the_total(tmp_path):
    seen: list[tuple[int, int]] = []
    write_synthetic_dataset(
        tmp_path / "d", n=300, layout="csv", seed=0, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (600, 600)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_truth_reader_rejects_foreign_files(tmp_path):
    with pytest.raises(DatasetError, match="no truth file"):
        read_truth(tmp_path / "missing.truth.parquet")
    other = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(other)
    with pytest.raises(DatasetError, match="not a fercleaner synthetic truth file"):
        read_truth(Path(other))


def test_output_does_not_depend_on_worker_count(tmp_path, monkeypatch):
    import fercleaner.synth.layouts as layouts
    import fercleaner.synth.render as render

    monkeypatch.setattr(render, "_SPAN", render._CHUNK)  # several spans from few faces
    monkeypatch.setattr(layouts, "_SAVE_SPAN", 16)
    serial, _ = generate_faces(300, seed=9, workers=1)
    pooled, _ = generate_faces(300, seed=9, workers=2)
    np.testing.assert_array_equal(serial, pooled)

    a = write_synthetic_dataset(tmp_path / "a", n=64, layout="imagefolder", seed=9, workers=1)
    b = write_synthetic_dataset(tmp_path / "b", n=64, layout="imagefolder", seed=9, workers=2)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.png")) and len(files_a) == 64
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
