"""Every bad-input kind becomes one problem row (file, row, reason, fix); nothing else is lost."""

from __future__ import annotations

import contextlib
import warnings

import pandas as pd
import pytest
from _dataset_files import (
    AFFECTNET_HEADER,
    affectnet_row,
    ferplus_row,
    pixels,
    truncate,
    write_image,
    write_rows,
)

from fercleaner.datasets import PROBLEM_KINDS, read_dataset
from fercleaner.datasets.images import check_image, check_images
from fercleaner.datasets.problems import ProblemLog, display_path
from fercleaner.errors import DatasetError


def _kinds(dataset) -> dict[str, str]:
    """sample_id (or file) -> problem kind."""
    return {
        (p.sample_id if isinstance(p.sample_id, str) else p.file): p.kind
        for p in dataset.problems.itertuples()
    }


def _assert_complete(dataset) -> None:
    assert dataset.reconciles
    assert dataset.rows_listed == len(dataset.samples) + dataset.label_row_problems
    assert set(dataset.problems["kind"]) <= set(PROBLEM_KINDS)
    assert dataset.problems[["file", "kind", "reason", "fix"]].notna().all().all()
    assert (dataset.problems["fix"].str.len() > 10).all()
    assert dataset.samples["sample_id"].is_unique


@pytest.fixture()
def broken_csv_dataset(tmp_path):
    """A labels.csv folder with two good rows and one row per bad-input kind."""
    write_image(tmp_path / "good1.png")
    write_image(tmp_path / "good2.jpg", seed=1)
    truncate(write_image(tmp_path / "trunc.png", size=24))
    truncate(write_image(tmp_path / "trunc.jpg", size=24))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("this is not a picture")
    write_image(tmp_path / "huge.png", size=40)
    write_image(tmp_path / "unknown.png")
    write_image(tmp_path.parent / "outside.png")
    write_rows(
        tmp_path / "labels.csv",
        [
            ["path", "label", "split"],
            ["good1.png", "happy", "train"],  # line 2
            ["good2.jpg", "sad", "test"],
            ["missing.png", "fear", "train"],
            ["trunc.png", "fear", "train"],  # line 5
            ["trunc.jpg", "fear", "train"],
            ["empty.png", "fear", "train"],
            ["text.png", "fear", "train"],
            ["huge.png", "fear", "train"],
            ["unknown.png", "bored", "train"],  # line 10
            ["good1.png", "anger", "train"],
            ["too", "many", "fields", "here"],
            ["good2.jpg", "sad", "holdout"],
            ["../outside.png", "fear", "train"],
            ["", "fear", "train"],  # line 15
        ],
    )
    return tmp_path


def test_every_bad_row_in_a_manifest_is_reported(broken_csv_dataset):
    ds = read_dataset(broken_csv_dataset, max_pixels=1000)
    _assert_complete(ds)
    assert ds.rows_listed == 14
    assert sorted(ds.samples["sample_id"]) == ["good1.png", "good2.jpg"]
    problems = ds.problems.set_index("row")
    expected = {
        4: "missing_file",
        5: "corrupt_image",
        6: "corrupt_image",
        7: "empty_file",
        8: "not_an_image",
        9: "too_many_pixels",
        10: "unknown_label",
        11: "duplicate_id",
        12: "malformed_row",
        13: "malformed_row",
        14: "path_escapes_root",
        15: "malformed_row",
    }
    assert problems["kind"].to_dict() == expected
    assert problems.loc[4, "file"] == "labels.csv"  # fix the row that names a missing image
    assert problems.loc[5, "file"] == "trunc.png"  # fix the broken image itself
    assert "missing.png" in problems.loc[4, "reason"]
    assert "1,600 pixels" in problems.loc[9, "reason"]
    assert "'bored'" in problems.loc[10, "reason"]
    assert "first listed at row 2" in problems.loc[11, "reason"]
    assert "holdout" in problems.loc[13, "reason"]
    assert "allow-outside-root" in problems.loc[14, "fix"]


def test_allow_outside_root_accepts_escaping_paths(broken_csv_dataset):
    ds = read_dataset(broken_csv_dataset, allow_outside_root=True, max_pixels=1000)
    _assert_complete(ds)
    assert "../outside.png" in set(ds.samples["sample_id"])
    outside = ds.samples.set_index("sample_id").loc["../outside.png", "path"]
    assert outside == str(broken_csv_dataset.parent / "outside.png")


def test_without_image_checks_only_missing_files_are_caught(broken_csv_dataset):
    ds = read_dataset(broken_csv_dataset, check_images=False)
    _assert_complete(ds)
    kinds = set(ds.problems["kind"])
    assert "missing_file" in kinds and "corrupt_image" not in kinds
    assert "trunc.png" in set(ds.samples["sample_id"])


def test_imagefolder_unknown_folders_loose_images_and_non_images(tmp_path):
    write_image(tmp_path / "train" / "happy" / "ok.png")
    (tmp_path / "train" / "happy" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "happy" / ".DS_Store").write_bytes(b"\0junk")
    write_image(tmp_path / "train" / "bored" / "b.png")
    write_image(tmp_path / "train" / "loose.png")
    write_image(tmp_path / "stray.png")
    write_image(tmp_path / "extras" / "e.png")
    (tmp_path / "README.md").write_text("hello")
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["train/happy/ok.png"]
    assert ds.rows_listed == 3  # ok.png, notes.txt, b.png (hidden files are not rows)
    assert _kinds(ds) == {
        "train/happy/notes.txt": "not_an_image",
        "train/bored/b.png": "unknown_label",
        "train/loose.png": "unlabeled_image",
        "stray.png": "unlabeled_image",
        "extras/e.png": "unlabeled_image",
    }
    assert ds.label_row_problems == 2


def _triples(dataset) -> set[tuple]:
    """(row, kind, sample_id) per problem, with None for missing values."""
    return {
        (
            None if pd.isna(p.row) else int(p.row),
            p.kind,
            None if pd.isna(p.sample_id) else p.sample_id,
        )
        for p in dataset.problems.itertuples()
    }


def test_ferplus_bad_rows_duplicates_and_unlisted_pngs(tmp_path):
    folder = tmp_path / "FER2013Train"
    write_rows(
        folder / "label.csv",
        [
            ferplus_row("a.png", [9, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            ferplus_row("a.png", [9, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            ferplus_row("b.png", [9, "x", 0, 0, 0, 0, 0, 0, 0, 0]),
            ["c.png", "(0, 0, 48, 48)", 1, 2],
            ["d.png", "not a box", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ferplus_row("gone.png", [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ferplus_row("../up.png", [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ferplus_row("z.png", [0] * 10),
        ],
    )
    for name in ("a", "b", "c", "d", "z", "unlisted"):
        write_image(folder / f"{name}.png")
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.rows_listed == 8
    assert ds.samples["sample_id"].tolist() == ["FER2013Train/a.png"]
    assert _triples(ds) == {
        (2, "duplicate_id", "FER2013Train/a.png"),
        (3, "malformed_row", "FER2013Train/b.png"),
        (4, "malformed_row", "FER2013Train/c.png"),
        (5, "malformed_row", "FER2013Train/d.png"),
        (6, "missing_file", "FER2013Train/gone.png"),
        (7, "path_escapes_root", "up.png"),
        (8, "no_plurality_emotion", "FER2013Train/z.png"),
        (None, "unlabeled_image", None),
    }
    unlabeled = ds.problems.set_index("kind").loc["unlabeled_image"]
    assert unlabeled["file"] == "FER2013Train/unlisted.png"


def test_fer2013_bad_codes_pixels_and_usage(tmp_path):
    write_rows(
        tmp_path / "fer2013.csv",
        [
            ["emotion", "pixels", "Usage"],
            [3, pixels(0), "Training"],
            [9, pixels(1), "Training"],
            ["x", pixels(2), "Training"],
            [3, "1 2 3", "Training"],
            [3, pixels(3), "Holdout"],
            [3, pixels(4)],
            [3, " ".join(["256"] + ["0"] * 2303), "Training"],
            [3, pixels(6) + " x", "Training"],
        ],
    )
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["fer2013.csv#0"]
    assert _triples(ds) == {
        (3, "unknown_label", "fer2013.csv#1"),
        (4, "malformed_row", "fer2013.csv#2"),
        (5, "malformed_row", "fer2013.csv#3"),
        (6, "malformed_row", "fer2013.csv#4"),
        (7, "malformed_row", "fer2013.csv#5"),
        (8, "malformed_row", "fer2013.csv#6"),
        (9, "malformed_row", "fer2013.csv#7"),
    }
    reasons = ds.problems.set_index("row")["reason"]
    assert "0-255" in reasons[8] and "other text" in reasons[9]


def test_rafdb_bad_codes_names_and_unlisted_images(tmp_path):
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    label_file.parent.mkdir(parents=True)
    label_file.write_text("train_1.jpg 4\ntrain_2.jpg 8\nval_3.jpg 1\ntrain_4.jpg 1 extra\n")
    aligned = tmp_path / "Image" / "aligned"
    for name in ("train_1", "train_2", "val_3", "train_4", "train_5"):
        write_image(aligned / f"{name}_aligned.jpg")
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    folder = "Image/aligned"
    assert ds.samples["sample_id"].tolist() == [f"{folder}/train_1_aligned.jpg"]
    assert _triples(ds) == {
        (2, "unknown_label", f"{folder}/train_2_aligned.jpg"),
        (3, "malformed_row", f"{folder}/val_3_aligned.jpg"),
        (4, "malformed_row", f"{folder}/train_4_aligned.jpg"),
        (None, "unlabeled_image", None),
    }


def test_affectnet_counts_exclusions_and_bad_rows(tmp_path):
    write_rows(
        tmp_path / "training.csv",
        [
            AFFECTNET_HEADER,
            affectnet_row("1/a.jpg", 3),
            affectnet_row("1/b.jpg", 8),
            affectnet_row("1/c.jpg", 9),
            affectnet_row("1/d.jpg", 10),
            affectnet_row("1/e.jpg", 10),
            affectnet_row("1/f.jpg", 11),
            affectnet_row("1/g.jpg", 2, valence=4.0),
            affectnet_row("../h.jpg", 2),
        ],
    )
    for name in "abcdefg":
        write_image(tmp_path / "Manually_Annotated_Images" / "1" / f"{name}.jpg")
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["given_label"].tolist() == ["surprise"]
    counts = ds.problems["kind"].value_counts().to_dict()
    assert counts == {
        "excluded_label": 4,
        "unknown_label": 1,
        "malformed_row": 1,
        "path_escapes_root": 1,
    }


def test_check_image_kinds(tmp_path):
    ok = write_image(tmp_path / "ok.png")
    assert check_image(str(ok)) is None
    assert check_image(str(write_image(tmp_path / "ok.jpg"))) is None
    assert check_image(str(write_image(tmp_path / "ok.bmp"))) is None
    assert check_image(str(tmp_path / "nope.png"))[0] == "missing_file"
    (tmp_path / "zero.jpg").write_bytes(b"")
    assert check_image(str(tmp_path / "zero.jpg"))[0] == "empty_file"
    (tmp_path / "junk.jpg").write_bytes(b"GIF89a-not-really" * 4)
    assert check_image(str(tmp_path / "junk.jpg"))[0] in {"not_an_image", "corrupt_image"}
    (tmp_path / "text.png").write_text("plain text")
    assert check_image(str(tmp_path / "text.png"))[0] == "not_an_image"
    for suffix in ("png", "jpg", "bmp"):
        broken = truncate(write_image(tmp_path / f"cut.{suffix}", size=32))
        assert check_image(str(broken))[0] == "corrupt_image", suffix
    kind, reason = check_image(str(ok), max_pixels=63)
    assert kind == "too_many_pixels" and "8x8" in reason


def test_parallel_checks_match_serial_checks(tmp_path, monkeypatch):
    paths = [str(write_image(tmp_path / f"{i}.png", seed=i)) for i in range(6)]
    paths.append(str(truncate(write_image(tmp_path / "cut.png", size=32))))
    paths.append(str(tmp_path / "missing.png"))
    serial = check_images(paths, workers=1)
    monkeypatch.setattr("fercleaner.datasets.images._SERIAL_BELOW", 0)
    monkeypatch.setattr("fercleaner.datasets.images._CHUNK", 3)
    seen = []
    for executor in ("process", "thread"):
        parallel = check_images(
            paths, workers=2, executor=executor, progress=lambda d, t: seen.append((d, t))
        )
        assert parallel == serial
    assert [r[0] if r else None for r in serial] == [None] * 6 + ["corrupt_image", "missing_file"]
    assert seen[-1] == (8, 8)


def test_a_row_the_csv_module_rejects_does_not_end_the_read(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    huge = "x" * 200_000  # over csv.field_size_limit()
    (tmp_path / "labels.csv").write_text(
        f"path,label\na.png,sad\nc.png,{huge}\nb.png,fear\nnul\0.png,fear\n"
    )
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert sorted(ds.samples["sample_id"]) == ["a.png", "b.png"]
    kinds = ds.problems.set_index("row")["kind"].to_dict()
    assert kinds == {3: "malformed_row", 5: "missing_file"}
    assert "unreadable CSV row" in ds.problems.set_index("row")["reason"][3]


def test_absolute_paths_inside_the_manifest_folder_are_samples(tmp_path):
    root = tmp_path / "data"
    write_image(root / "imgs" / "a.png")
    write_image(root / "imgs" / "b.png", seed=1)
    write_image(tmp_path / "outside.png", seed=2)
    (tmp_path / "link").symlink_to(root)  # the root read through a link, rows by real path
    write_rows(
        root / "labels.csv",
        [
            ["path", "label"],
            [str(root / "imgs" / "a.png"), "happy"],
            [str(root / "imgs" / ".." / "imgs" / "b.png"), "sad"],
            [str(tmp_path / "outside.png"), "fear"],  # line 4: leaves the root
        ],
    )
    for source in (root, tmp_path / "link"):
        ds = read_dataset(source)
        _assert_complete(ds)
        s = ds.samples.set_index("sample_id")
        assert sorted(s.index) == ["imgs/a.png", "imgs/b.png"]
        assert s.loc["imgs/a.png", "path"] == str(source / "imgs" / "a.png")
        (problem,) = ds.problems.itertuples()
        assert (problem.row, problem.kind) == (4, "path_escapes_root")
        assert str(tmp_path / "outside.png") in problem.reason
        assert "outside the manifest's folder" in problem.reason
        assert "--allow-outside-root" in problem.fix
    assert len(read_dataset(root, allow_outside_root=True).samples) == 3


def test_a_label_file_that_is_not_utf8_is_refused_naming_line_and_byte(tmp_path):
    write_image(tmp_path / "café.png")
    write_image(tmp_path / "b.png", seed=1)
    (tmp_path / "labels.csv").write_bytes(
        "path,label\nb.png,sad\ncafé.png,happy\n".encode("latin-1")
    )
    with pytest.raises(DatasetError) as caught:
        read_dataset(tmp_path)  # was: café.png read as caf\ufffd.png, then "missing"
    message = str(caught.value)
    assert str(tmp_path / "labels.csv") in message
    assert "line 3 holds byte 0xe9 (at byte offset 24)" in message
    assert "caf\\xe9.png" in message and "Re-save it as UTF-8" in message
    (tmp_path / "labels.csv").write_text("path,label\nb.png,sad\ncafé.png,happy\n")
    assert len(read_dataset(tmp_path).samples) == 2


def test_fer2013_votes_that_are_not_utf8_are_left_off_with_a_problem(tmp_path):
    write_rows(
        tmp_path / "fer2013.csv", [["emotion", "pixels", "Usage"], [3, pixels(0), "Training"]]
    )
    (tmp_path / "fer2013new.csv").write_bytes(b"Usage,Image name,neutral\xe9\n")
    ds = read_dataset(tmp_path)
    assert len(ds.samples) == 1 and "votes" not in ds.samples
    (problem,) = ds.problems.itertuples()
    assert problem.kind == "votes_misaligned" and "line 1 holds byte 0xe9" in problem.reason


def test_a_problem_without_sample_id_keeps_it_missing(tmp_path):
    """Under pandas 2 (infer_string off) astype("str") stored None as the text "None"."""
    log = ProblemLog(tmp_path)
    log.add("malformed_row", file=tmp_path / "labels.csv", row=2, reason="the path is empty")
    log.add("missing_file", file=tmp_path / "labels.csv", row=3, sample_id="a.png", reason="gone")
    settings = [contextlib.nullcontext()]
    if "infer_string" in dir(pd.options.future):  # pandas 2.1-3: pandas 2's behaviour
        settings.append(pd.option_context("future.infer_string", False))
    for setting in settings:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the option is deprecated in pandas 3
            with setting:
                frame = log.to_frame()
        assert frame["sample_id"].isna().tolist() == [True, False]
        assert frame["sample_id"].tolist()[1] == "a.png"
        assert "None" not in frame["sample_id"].astype(object).tolist()


def test_control_characters_in_names_are_escaped_where_paths_are_shown(tmp_path):
    assert display_path(tmp_path / "a\x1b[31mb\rc.png", tmp_path) == "a\\x1b[31mb\\x0dc.png"
    assert display_path("/elsewhere/x\x9by.png", tmp_path) == "/elsewhere/x\\x9by.png"
    name = "bad\x1b]0;pwned\x07.png"
    (tmp_path / "train" / "happy").mkdir(parents=True)
    (tmp_path / "train" / "happy" / name).write_text("not an image")
    write_image(tmp_path / "train" / "happy" / "ok.png")
    ds = read_dataset(tmp_path)
    (problem,) = ds.problems.itertuples()
    assert problem.kind == "not_an_image"
    assert problem.file == "train/happy/bad\\x1b]0;pwned\\x07.png"
    assert "\x1b" not in problem.reason and "bad\\x1b]0;pwned\\x07.png" in problem.reason
    assert problem.sample_id == f"train/happy/{name}"  # the id itself is data, kept as is
