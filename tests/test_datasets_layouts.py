"""Each layout reads a small hand-written dataset into the sample-table contract."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _dataset_files import (
    AFFECTNET_HEADER,
    affectnet_row,
    ferplus_row,
    pixels,
    write_image,
    write_rows,
)

from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.datasets import read_dataset, summarize_dataset
from fercleaner.errors import DatasetError

VOTES_HEADER = [
    "Usage",
    "Image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]


def _by_id(dataset):
    return dataset.samples.set_index("sample_id")


def test_imagefolder_with_split_folders_and_aliases(tmp_path):
    write_image(tmp_path / "training" / "happy" / "a.png")
    write_image(tmp_path / "training" / "Angry" / "b.jpg")
    write_image(tmp_path / "valid" / "sad" / "c.png")
    write_image(tmp_path / "testing" / "surprised" / "nested" / "d.png")
    ds = read_dataset(tmp_path)
    assert ds.layout == "imagefolder"
    samples = _by_id(ds)
    assert samples["split"].to_dict() == {
        "training/Angry/b.jpg": "train",
        "training/happy/a.png": "train",
        "valid/sad/c.png": "val",
        "testing/surprised/nested/d.png": "test",
    }
    assert samples.loc["training/Angry/b.jpg", "given_label"] == "anger"
    assert samples.loc["testing/surprised/nested/d.png", "given_label"] == "surprise"
    assert samples.loc["valid/sad/c.png", "path"] == str(tmp_path / "valid" / "sad" / "c.png")
    assert ds.classes == ["happiness", "surprise", "sadness", "anger"]
    assert ds.problems.empty and ds.rows_listed == 4


def test_imagefolder_flat_is_all_train(tmp_path):
    write_image(tmp_path / "fear" / "x.png")
    write_image(tmp_path / "neutral" / "y.png")
    ds = read_dataset(tmp_path, "imagefolder")
    assert set(ds.samples["split"]) == {"train"}
    assert _by_id(ds)["given_label"].to_dict() == {"fear/x.png": "fear", "neutral/y.png": "neutral"}


def test_ferplus_votes_plurality_and_ties(tmp_path):
    rows = [
        ferplus_row("fer0.png", [6, 1, 0, 0, 0, 0, 0, 0, 3, 0]),  # neutral
        ferplus_row("fer1.png", [0, 0, 0, 4, 4, 0, 0, 0, 2, 0]),  # tie sadness/anger -> sadness
        ferplus_row("fer2.png", [0, 3, 0, 0, 0, 0, 0, 0, 3, 4]),  # plurality NF -> problem
        ferplus_row("fer3.png", [0, 0, 0, 0, 0, 0, 0, 5, 5, 0]),  # emotion tied with unknown
    ]
    write_rows(tmp_path / "FER2013Train" / "label.csv", rows)
    write_rows(
        tmp_path / "FER2013Valid" / "label.csv", [ferplus_row("fer9.png", [0] * 6 + [9, 0, 1, 0])]
    )
    for name in ("fer0", "fer1", "fer2", "fer3"):
        write_image(tmp_path / "FER2013Train" / f"{name}.png")
    write_image(tmp_path / "FER2013Valid" / "fer9.png")
    ds = read_dataset(tmp_path)
    assert ds.layout == "ferplus" and ds.classes == list(CANONICAL_CLASSES)
    s = _by_id(ds)
    assert s["given_label"].to_dict() == {
        "FER2013Train/fer0.png": "neutral",
        "FER2013Train/fer1.png": "sadness",
        "FER2013Train/fer3.png": "contempt",
        "FER2013Valid/fer9.png": "fear",
    }
    assert s["label_tie"].to_dict()["FER2013Train/fer1.png"]
    assert not s.loc["FER2013Train/fer0.png", "label_tie"]
    assert list(s.loc["FER2013Train/fer1.png", "votes"]) == [0, 0, 0, 4, 4, 0, 0, 0]
    assert s.loc["FER2013Train/fer0.png", "votes_unknown"] == 3
    assert s.loc["FER2013Valid/fer9.png", "split"] == "val"
    assert s.loc["FER2013Train/fer0.png", "face_w"] == 48
    (problem,) = ds.problems.itertuples()
    assert problem.kind == "no_plurality_emotion" and problem.sample_id == "FER2013Train/fer2.png"
    assert problem.file == "FER2013Train/label.csv" and problem.row == 3
    assert "NF" in problem.reason
    assert "(unknown: 0, NF: 1)" in ds.detection
    summary = summarize_dataset(ds)
    assert summary["label_ties"] == 1 and summary["votes_present"]  # fer3 ties only with unknown
    assert summary["problem_counts"] == {"no_plurality_emotion": 1}
    assert summary["splits"]["val"] == {
        "total": 1,
        "classes": {c: int(c == "fear") for c in CANONICAL_CLASSES},
    }


def test_fer2013_pixels_and_votes(tmp_path):
    write_rows(
        tmp_path / "fer2013.csv",
        [
            ["emotion", "pixels", "Usage"],
            [0, pixels(0), "Training"],
            [3, pixels(1), "PublicTest"],
            [6, pixels(2), "PrivateTest"],
        ],
    )
    ds = read_dataset(tmp_path)
    assert ds.layout == "fer2013"
    assert ds.samples["sample_id"].tolist() == ["fer2013.csv#0", "fer2013.csv#1", "fer2013.csv#2"]
    assert ds.samples["given_label"].tolist() == ["anger", "happiness", "neutral"]
    assert ds.samples["split"].tolist() == ["train", "val", "test"]
    assert ds.samples["pixels"][0] == pixels(0)
    assert ds.samples["path"][0] == str(tmp_path / "fer2013.csv")
    assert "votes" not in ds.samples and "contempt" not in ds.classes

    write_rows(
        tmp_path / "fer2013new.csv",
        [
            VOTES_HEADER,
            ["Training", "fer0000000.png", 1, 8, 0, 0, 0, 0, 0, 1, 0, 0],
            ["PublicTest", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10],
        ],
    )
    ds = read_dataset(tmp_path)
    assert ds.samples["given_label"].tolist() == ["anger", "happiness", "neutral"]  # FER2013's
    assert list(ds.samples["votes"][0]) == [1, 8, 0, 0, 0, 0, 0, 1]
    assert ds.samples["votes_nf"][1] == 10
    assert ds.samples["votes"][2] is None  # the votes file stops before row 2
    assert ds.classes == list(CANONICAL_CLASSES)


@pytest.mark.parametrize("aligned", [True, False])
def test_rafdb_codes_splits_and_distribution(tmp_path, aligned):
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    label_file.parent.mkdir(parents=True)
    label_file.write_text("train_00001.jpg 5\ntrain_00002.jpg 1\ntest_0001.jpg 7\n")
    (tmp_path / "EmoLabel" / "distribution.txt").write_text(
        "train_00001.jpg 0.1 0 0 0 0.9 0 0\n"  # code 5 = sadness
    )
    for name in ("train_00001", "train_00002", "test_0001"):
        if aligned:
            write_image(tmp_path / "Image" / "aligned" / f"{name}_aligned.jpg")
        else:
            write_image(tmp_path / "Image" / "original" / f"{name}.jpg")
    ds = read_dataset(tmp_path)
    assert ds.layout == "rafdb" and len(ds.classes) == 7 and "contempt" not in ds.classes
    folder = "Image/aligned" if aligned else "Image/original"
    suffix = "_aligned" if aligned else ""
    s = _by_id(ds)
    assert s["given_label"].to_dict() == {
        f"{folder}/train_00001{suffix}.jpg": "sadness",
        f"{folder}/train_00002{suffix}.jpg": "surprise",
        f"{folder}/test_0001{suffix}.jpg": "neutral",
    }
    assert s["split"].tolist() == ["train", "train", "test"]
    dist = s.loc[f"{folder}/train_00001{suffix}.jpg", "label_distribution"]
    assert dist.dtype == np.float32
    assert dist[ds.classes.index("sadness")] == pytest.approx(0.9)
    assert dist[ds.classes.index("surprise")] == pytest.approx(0.1)
    assert s.loc[f"{folder}/test_0001{suffix}.jpg", "label_distribution"] is None
    assert ds.problems.empty


def test_a_rafdb_distribution_that_is_not_utf8_is_a_problem_not_the_end(tmp_path):
    """The distribution is optional, as fer2013new.csv's votes are: the labels still read."""
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    label_file.parent.mkdir(parents=True)
    label_file.write_text("train_00001.jpg 5\ntrain_00002.jpg 1\n")
    (tmp_path / "EmoLabel" / "distribution.txt").write_bytes(
        "train_00001.jpg 0.1 0 0 0 0.9 0 0 \u00e9\n".encode("latin-1")
    )
    for name in ("train_00001", "train_00002"):
        write_image(tmp_path / "Image" / "aligned" / f"{name}_aligned.jpg")
    ds = read_dataset(tmp_path)
    assert len(ds.samples) == 2 and "label_distribution" not in ds.samples.columns
    (problem,) = ds.problems.itertuples()
    assert problem.kind == "invalid_votes" and "is not UTF-8" in problem.reason
    assert "no sample has a label_distribution" in problem.reason


@pytest.mark.parametrize("image_folder", [True, False])
def test_affectnet_codes_va_box_and_exclusions(tmp_path, image_folder):
    prefix = "Manually_Annotated_Images/" if image_folder else ""
    write_rows(
        tmp_path / "training.csv",
        [
            AFFECTNET_HEADER,
            affectnet_row("1/a.jpg", 1),
            affectnet_row("1/b.jpg", 9),
            affectnet_row("2/c.jpg", 7, valence=-2, arousal=-2),
        ],
    )
    write_rows(tmp_path / "validation.csv", [AFFECTNET_HEADER, affectnet_row("3/d.jpg", 0)])
    for name in ("1/a.jpg", "1/b.jpg", "2/c.jpg", "3/d.jpg"):
        write_image(tmp_path / f"{prefix}{name}")
    ds = read_dataset(tmp_path)
    assert ds.layout == "affectnet" and len(ds.classes) == 8
    s = _by_id(ds)
    assert s["given_label"].to_dict() == {
        f"{prefix}1/a.jpg": "happiness",
        f"{prefix}2/c.jpg": "contempt",
        f"{prefix}3/d.jpg": "neutral",
    }
    assert s["split"].tolist() == ["train", "train", "val"]
    a = s.loc[f"{prefix}1/a.jpg"]
    assert (a.valence, a.arousal) == (0.5, -0.25)
    assert (a.face_x, a.face_y, a.face_w, a.face_h) == (1, 2, 30, 40)
    assert math.isnan(s.loc[f"{prefix}2/c.jpg", "valence"])
    (problem,) = ds.problems.itertuples()
    assert problem.kind == "excluded_label" and problem.row == 3 and "uncertain" in problem.reason


def test_csv_manifest_folder_file_and_parquet(tmp_path):
    write_image(tmp_path / "imgs" / "a.png")
    write_image(tmp_path / "imgs" / "b.png")
    write_image(tmp_path / "c.png")
    write_rows(
        tmp_path / "labels.csv",
        [
            ["path", "label", "split", "valence", "au_12"],
            ["imgs/a.png", "Happy", "train", "0.8", "0.9"],
            ["imgs\\b.png", "angry", "validation", "-0.5", ""],
            ["./c.png", "sad", "", "", "0.1"],
        ],
    )
    for source in (tmp_path, tmp_path / "labels.csv"):
        ds = read_dataset(source)
        assert ds.layout == "csv" and ds.root == tmp_path
        s = _by_id(ds)
        assert s["given_label"].to_dict() == {
            "imgs/a.png": "happiness",
            "imgs/b.png": "anger",
            "c.png": "sadness",
        }
        assert s["split"].tolist() == ["train", "val", "train"]
        assert s.loc["imgs/a.png", "valence"] == pytest.approx(0.8)
        assert math.isnan(s.loc["imgs/b.png", "au_12"])
        assert s.loc["imgs/b.png", "path"] == str(tmp_path / "imgs" / "b.png")
        assert ds.classes == ["happiness", "sadness", "anger"]
    frame = pd.DataFrame({"path": ["imgs/a.png", "c.png"], "label": ["fear", "disgust"]})
    frame.to_parquet(tmp_path / "labels.parquet")
    (tmp_path / "labels.csv").unlink()
    ds = read_dataset(tmp_path)
    assert _by_id(ds)["given_label"].to_dict() == {"imgs/a.png": "fear", "c.png": "disgust"}


def test_affectnet_without_face_box_columns_uses_whole_images(tmp_path):
    boxless = [h for h in AFFECTNET_HEADER if not h.startswith("face_")]
    write_rows(
        tmp_path / "training.csv",
        [boxless, ["1/a.jpg", "", 1, 0.5, 0.5], ["1/b.jpg", "", 2, 0.1, 0.1]],
    )
    for name in ("1/a.jpg", "1/b.jpg"):
        write_image(tmp_path / "Manually_Annotated_Images" / name)
    ds = read_dataset(tmp_path)  # was: every row a malformed_row (face_x is not a number)
    assert ds.problems.empty and len(ds.samples) == 2
    assert not any(c.startswith("face_") for c in ds.samples.columns)
    assert "training.csv has no face box columns" in ds.detection
    assert "images are used whole" in ds.detection
    # one manifest with boxes, one without: the boxless rows have no box (NaN), not a made-up one
    write_rows(tmp_path / "validation.csv", [AFFECTNET_HEADER, affectnet_row("1/c.jpg", 3)])
    write_image(tmp_path / "Manually_Annotated_Images" / "1" / "c.jpg", size=48)
    s = _by_id(read_dataset(tmp_path))
    assert s["face_w"].isna().tolist() == [True, True, False]


def test_affectnet_with_some_face_box_columns_is_one_error_naming_them(tmp_path):
    header = [h for h in AFFECTNET_HEADER if h not in ("face_width", "face_height")]
    write_rows(tmp_path / "training.csv", [header, ["1/a.jpg", 1, 2, "", 1, 0.5, 0.5]])
    with pytest.raises(DatasetError, match="lacks face_width, face_height") as caught:
        read_dataset(tmp_path)
    assert str(tmp_path / "training.csv") in str(caught.value)
