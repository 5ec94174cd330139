"""Hostile dataset inputs (issue 13): links out of the root, swallowed and empty rows, unreadable
folders, hidden files, misaligned votes, high-bit-depth and lying images, undecodable names.

Every case asserts the same contract: nothing from outside the root is read, every row is
either a sample or a problem (the counts reconcile), and `inspect` finds what `score` will
exclude.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

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
from _hostile_files import (
    write_corrupt_jpeg_scan,
    write_float_tiff,
    write_lying_png,
    write_png16,
)
from run_fixtures import TINY_TRAINING
from typer.testing import CliRunner

from fercleaner.cache import build_cache
from fercleaner.cli import app
from fercleaner.datasets import NON_ROW_KINDS, PROBLEM_KINDS, read_dataset
from fercleaner.datasets.images import check_image
from fercleaner.decode import DecodeError, decode_image

runner = CliRunner()
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


def _assert_complete(dataset) -> None:
    assert dataset.reconciles
    assert set(dataset.problems["kind"]) <= set(PROBLEM_KINDS)
    assert dataset.problems[["file", "kind", "reason", "fix"]].notna().all().all()
    assert dataset.samples["sample_id"].is_unique
    # every text a user sees is valid UTF-8, and both tables survive Parquet and JSON
    for column in ("file", "sample_id", "reason"):
        for text in dataset.problems[column].dropna():
            text.encode("utf-8")
    dataset.problems.to_parquet(io.BytesIO())
    dataset.samples.drop(columns=["votes"], errors="ignore").to_parquet(io.BytesIO())
    json.dumps(dataset.problems.to_dict("records"), default=str)


def _kinds(dataset) -> dict[str, str]:
    """sample_id (or file) -> problem kind."""
    return {
        (p.sample_id if isinstance(p.sample_id, str) else p.file): p.kind
        for p in dataset.problems.itertuples()
    }


# ------------------------------------------------------------------ 2: links out of the root


@pytest.fixture()
def outside(tmp_path):
    """Images and a folder outside the dataset root (which is tmp_path / 'data')."""
    write_image(tmp_path / "secret" / "outside.png", seed=5)
    write_image(tmp_path / "secret" / "dir" / "o1.png", seed=6)
    write_image(tmp_path / "secret" / "dir" / "o2.png", seed=7)
    return tmp_path / "secret"


def test_a_linked_image_outside_the_root_is_reported_not_read(tmp_path, outside):
    root = tmp_path / "data"
    write_image(root / "a.png")
    write_image(root / "sub" / "inside.png", seed=1)
    (root / "link.png").symlink_to(outside / "outside.png")
    (root / "inner.png").symlink_to(root / "sub" / "inside.png")  # stays inside: fine
    write_rows(
        root / "labels.csv",
        [["path", "label"], ["a.png", "sad"], ["link.png", "fear"], ["inner.png", "happy"]],
    )
    ds = read_dataset(root)
    _assert_complete(ds)
    assert sorted(ds.samples["sample_id"]) == ["a.png", "inner.png"]
    problem = ds.problems.set_index("sample_id").loc["link.png"]
    assert problem["kind"] == "path_escapes_root" and problem["row"] == 3
    assert "symbolic link" in problem["reason"] and "--follow-links" in problem["fix"]

    followed = read_dataset(root, follow_links=True)
    _assert_complete(followed)
    assert sorted(followed.samples["sample_id"]) == ["a.png", "inner.png", "link.png"]


def test_a_linked_class_folder_outside_the_root_is_not_listed(tmp_path, outside):
    root = tmp_path / "data"
    write_image(root / "train" / "happy" / "a.png")
    (root / "train" / "happy" / "x.png").symlink_to(outside / "outside.png")
    (root / "train" / "sad").symlink_to(outside / "dir", target_is_directory=True)
    (root / "train" / "happy" / "more").symlink_to(outside / "dir", target_is_directory=True)
    ds = read_dataset(root)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["train/happy/a.png"]
    assert _kinds(ds) == {
        "train/happy/x.png": "path_escapes_root",
        "train/sad": "path_escapes_root",
        "train/happy/more": "path_escapes_root",
    }
    text = " ".join(ds.problems["reason"])
    assert "o1.png" not in text and "o2.png" not in text  # the outside folder was not listed
    assert ds.rows_listed == 4  # a.png, x.png, and each linked folder stands for its rows

    followed = read_dataset(root, follow_links=True)
    _assert_complete(followed)
    assert sorted(followed.samples["sample_id"]) == [
        "train/happy/a.png",
        "train/happy/more/o1.png",
        "train/happy/more/o2.png",
        "train/happy/x.png",
        "train/sad/o1.png",
        "train/sad/o2.png",
    ]


def test_links_in_a_manifest_layout_and_a_linked_root(tmp_path, outside):
    real = tmp_path / "real"
    folder = real / "FER2013Train"
    write_image(folder / "a.png")
    (folder / "b.png").symlink_to(outside / "outside.png")
    write_rows(
        folder / "label.csv",
        [ferplus_row("a.png", [10] + [0] * 9), ferplus_row("b.png", [10] + [0] * 9)],
    )
    (tmp_path / "via-link").symlink_to(real, target_is_directory=True)
    ds = read_dataset(tmp_path / "via-link")  # the root itself may be a link
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["FER2013Train/a.png"]
    assert _kinds(ds) == {"FER2013Train/b.png": "path_escapes_root"}


def test_a_link_loop_inside_a_class_folder_ends(tmp_path):
    write_image(tmp_path / "happy" / "a.png")
    (tmp_path / "happy" / "loop").symlink_to(tmp_path / "happy", target_is_directory=True)
    for follow in (False, True):
        ds = read_dataset(tmp_path, follow_links=follow)
        _assert_complete(ds)
        assert ds.samples["sample_id"].tolist() == ["happy/a.png"]
        assert _kinds(ds) == {"happy/loop": "unreadable_folder"}


def test_inspect_follow_links_option(tmp_path, outside):
    root = tmp_path / "data"
    write_image(root / "happy" / "a.png")
    (root / "happy" / "b.png").symlink_to(outside / "outside.png")
    result = runner.invoke(app, ["inspect", str(root), "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["problem_counts"] == {"path_escapes_root": 1}
    result = runner.invoke(app, ["inspect", str(root), "--follow-links"])
    assert result.exit_code == 0, result.output
    assert "2 label rows = 2 ingested" in result.output


# ------------------------------------------------------------------ 5: an unclosed quote


def test_an_unclosed_quote_cannot_swallow_rows(tmp_path):
    for name in "abcd":
        write_image(tmp_path / f"{name}.png")
    (tmp_path / "labels.csv").write_text(
        'path,label\na.png,sad\n"b.png,sad\nc.png,fear\n\nd.png,anger\n'
    )
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.rows_listed == 4  # the physical records, not what the quote made of them
    assert ds.samples["sample_id"].tolist() == ["a.png"]
    problems = ds.problems.set_index("row")
    assert problems["kind"].to_dict() == {
        3: "malformed_row",
        4: "malformed_row",
        6: "malformed_row",
    }
    assert "unclosed quote" in problems.loc[3, "reason"]
    assert "line 3" in problems.loc[4, "reason"] and "c.png,fear" in problems.loc[4, "reason"]
    assert "line 3" in problems.loc[6, "reason"]


def test_an_unclosed_quote_in_every_csv_layout(tmp_path):
    folder = tmp_path / "ferplus" / "FER2013Train"
    for name in "abc":
        write_image(folder / f"{name}.png")
    rows = [
        ",".join(map(str, ferplus_row(n, [10] + [0] * 9))).replace("(0, 0, 48, 48)", "x")
        for n in ("a.png", "b.png", "c.png")
    ]
    (folder / "label.csv").write_text(f'{rows[0]}\n"{rows[1]}\n{rows[2]}\n')
    ds = read_dataset(tmp_path / "ferplus")
    _assert_complete(ds)
    assert ds.rows_listed == 3 and set(ds.problems["row"].dropna()) == {1, 2, 3}

    fer = tmp_path / "fer2013"
    fer.mkdir()
    (fer / "fer2013.csv").write_text(
        f'emotion,pixels,Usage\n3,{pixels(0)},Training\n"3,{pixels(1)},Training\n'
        f"4,{pixels(2)},Training\n5,{pixels(3)},Training\n"
    )
    ds = read_dataset(fer)
    _assert_complete(ds)
    assert ds.rows_listed == 4
    assert ds.samples["sample_id"].tolist() == ["fer2013.csv#0"]
    assert ds.problems["sample_id"].tolist() == [f"fer2013.csv#{r}" for r in (1, 2, 3)]


# ------------------------------------------------------------------ 6: rows nobody counted


def test_rows_of_only_commas_are_counted(tmp_path):
    write_image(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("path,label,split\na.png,sad,train\n,,\n\n  \n, ,\n")
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.rows_listed == 3
    assert ds.problems.set_index("row")["kind"].to_dict() == {
        3: "malformed_row",
        6: "malformed_row",
    }

    affect = tmp_path / "affectnet"
    write_image(affect / "Manually_Annotated_Images" / "1" / "a.jpg")
    write_rows(affect / "training.csv", [AFFECTNET_HEADER, affectnet_row("1/a.jpg", 3)])
    with open(affect / "training.csv", "a") as fh:
        fh.write(",,,,,,,,\n")
    ds = read_dataset(affect)
    _assert_complete(ds)
    assert ds.rows_listed == 2 and ds.problems["kind"].tolist() == ["malformed_row"]


def _deny(monkeypatch, *denied: Path) -> None:
    """Make os.scandir fail like a folder without read permission (tests may run as root)."""
    real_scandir = os.scandir
    blocked = {os.fspath(p) for p in denied}

    def scandir(path="."):
        if os.fspath(path) in blocked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_class_folder_is_a_problem(tmp_path, monkeypatch):
    write_image(tmp_path / "train" / "happy" / "a.png")
    write_image(tmp_path / "train" / "sad" / "b.png")
    write_image(tmp_path / "train" / "happy" / "deep" / "c.png")
    write_image(tmp_path / "val" / "fear" / "d.png")
    _deny(
        monkeypatch,
        tmp_path / "train" / "sad",
        tmp_path / "train" / "happy" / "deep",
        tmp_path / "val",
    )
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["train/happy/a.png"]
    assert _kinds(ds) == {
        "train/sad": "unreadable_folder",
        "train/happy/deep": "unreadable_folder",
        "val": "unreadable_folder",
    }
    assert "Permission denied" in " ".join(ds.problems["reason"])
    assert "unreadable_folder" in NON_ROW_KINDS  # how many rows it held is unknown


def test_an_unreadable_folder_in_a_manifest_layouts_image_tree(tmp_path, monkeypatch):
    folder = tmp_path / "FER2013Train"
    write_image(folder / "a.png")
    write_image(folder / "locked" / "b.png")
    write_rows(folder / "label.csv", [ferplus_row("a.png", [10] + [0] * 9)])
    _deny(monkeypatch, folder / "locked")
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert _kinds(ds) == {"FER2013Train/locked": "unreadable_folder"}


def test_hidden_images_are_reported(tmp_path):
    write_image(tmp_path / "train" / "happy" / "a.png")
    write_image(tmp_path / "train" / "happy" / ".b.png")
    write_image(tmp_path / "train" / "happy" / ".ipynb_checkpoints" / "c-checkpoint.png")
    (tmp_path / "train" / "happy" / ".DS_Store").write_bytes(b"\0junk")  # OS dropping: no image
    write_image(tmp_path / "train" / ".e.png")
    write_image(tmp_path / ".cache" / "f.png")
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["train/happy/a.png"]
    assert _kinds(ds) == {
        "train/happy/.b.png": "hidden_file",
        "train/happy/.ipynb_checkpoints/c-checkpoint.png": "hidden_file",
        "train/.e.png": "unlabeled_image",
        ".cache/f.png": "unlabeled_image",
    }
    assert ds.rows_listed == 3

    ferplus = tmp_path / "ferplus"
    write_image(ferplus / "FER2013Train" / "a.png")
    write_image(ferplus / "FER2013Train" / ".x.png")
    write_rows(ferplus / "FER2013Train" / "label.csv", [ferplus_row("a.png", [10] + [0] * 9)])
    ds = read_dataset(ferplus)
    _assert_complete(ds)
    assert _kinds(ds) == {"FER2013Train/.x.png": "unlabeled_image"}


def test_implausible_ferplus_vote_sums_are_rejected(tmp_path):
    folder = tmp_path / "FER2013Train"
    for name in "abc":
        write_image(folder / f"{name}.png")
    write_rows(
        folder / "label.csv",
        [
            ferplus_row("a.png", [6, 2, 0, 0, 0, 0, 0, 0, 1, 0]),  # 9: a tagger may be missing
            ferplus_row("b.png", [93, 10, 0, 0, 0, 0, 0, 0, 0, 0]),  # 103
            ferplus_row("c.png", [10, 1, 0, 0, 0, 0, 0, 0, 0, 0]),  # 11
        ],
    )
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["FER2013Train/a.png"]
    problems = ds.problems.set_index("row")
    assert problems["kind"].to_dict() == {2: "malformed_row", 3: "malformed_row"}
    assert "103" in problems.loc[2, "reason"]


def _fer2013_with_votes(
    root: Path,
    n: int = 24,
    *,
    usages=None,
    drop: int | None = None,
    names: bool | list[str] = True,
    insert_at: int | None = None,
    keep: int | None = None,
) -> list[list]:
    """fer2013.csv with n rows and a fer2013new.csv whose row r votes r % 8 (its own image).

    `names`: True for fer<r>.png, False for none, or one name per row; `keep`: cut the
    votes file to its first rows (after `drop` / `insert_at`).
    """
    usages = usages or ["Training"] * n
    if names is True or names is False:
        names = [f"fer{r:07d}.png" if names else "" for r in range(n)]
    write_rows(
        root / "fer2013.csv",
        [["emotion", "pixels", "Usage"]] + [[r % 7, pixels(r), usages[r]] for r in range(n)],
    )
    votes = []
    for r in range(n):
        counts = [0] * 10
        counts[r % 8] = 10
        votes.append([usages[r], names[r], *counts])
    if drop is not None:
        del votes[drop]
    if insert_at is not None:
        votes.insert(insert_at, [usages[insert_at], "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10])
    votes = votes[:keep]
    write_rows(root / "fer2013new.csv", [VOTES_HEADER, *votes])
    return votes


def _own_votes(ds) -> list[bool | None]:
    """Per sample: do its votes point at its own row (True), another row (False), none (None)."""
    out = []
    for sample_id, votes in zip(ds.samples["sample_id"], ds.samples["votes"], strict=True):
        r = int(sample_id.split("#")[1])
        out.append(None if votes is None else int(np.argmax(votes)) == r % 8)
    return out


def test_aligned_fer2013_votes_join_without_problems(tmp_path):
    _fer2013_with_votes(tmp_path)
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.problems.empty and _own_votes(ds) == [True] * 24


def test_a_shifted_votes_file_attaches_no_other_images_votes(tmp_path):
    _fer2013_with_votes(tmp_path, drop=5)  # row 5 deleted: rows 5.. carry their neighbour's votes
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert len(ds.samples) == 24 and False not in _own_votes(ds)
    assert _own_votes(ds)[:5] == [True] * 5  # the names prove rows 0-4 line up
    kinds = set(ds.problems["kind"])
    assert kinds == {"votes_misaligned"}
    assert set(ds.problems["file"]) == {"fer2013new.csv"}
    reasons = " ".join(ds.problems["reason"])
    assert "23" in reasons and "24" in reasons  # the row counts differ
    assert "fer0000006.png" in reasons  # where the names stop lining up


def test_a_shifted_votes_file_without_names(tmp_path):
    usages = ["Training"] * 16 + ["PublicTest"] * 4 + ["PrivateTest"] * 4
    _fer2013_with_votes(tmp_path, usages=usages, names=False, insert_at=3)
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert len(ds.samples) == 24 and False not in _own_votes(ds)
    assert set(ds.problems["kind"]) == {"votes_misaligned"}
    assert "Usage" in " ".join(ds.problems["reason"])


#: Names as the real fer2013new.csv has them: a dropped image's row has no name and
#: sometimes no number (so names lag behind rows), and three rows are out of sequence.
REAL_LIKE_NAMES = [
    f"fer{x:07d}.png" if x is not None else ""
    for x in [0, 1, None, 2, 3, 4, None, 6, 7, 3000, 8, 9, 10, 2, 11, 12, 13, 14, 15, 16]
]


def test_real_fer_plus_naming_is_not_a_shift(tmp_path):
    _fer2013_with_votes(tmp_path, n=20, names=REAL_LIKE_NAMES)
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.problems.empty and _own_votes(ds) == [True] * 20


@pytest.mark.parametrize(
    ("names", "drop", "keep", "own"),
    [
        (True, 0, None, [None] * 24),  # the first row is gone: every name runs one ahead
        (True, None, 20, [True] * 20 + [None] * 4),  # cut short, and the names prove it
        (REAL_LIKE_NAMES, None, 16, [None] * 20),  # cut short or a row lost: cannot tell
        (REAL_LIKE_NAMES, 16, None, [True] * 16 + [None] * 4),  # the names show where
        (REAL_LIKE_NAMES, 2, None, [None] * 20),  # a nameless row lost: nothing shows where
    ],
)
def test_vote_rows_that_cannot_be_placed_are_not_attached(tmp_path, names, drop, keep, own):
    n = len(own)
    _fer2013_with_votes(tmp_path, n=n, names=names, drop=drop, keep=keep)
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert _own_votes(ds) == own
    assert set(ds.problems["kind"]) == {"votes_misaligned"}


def test_implausible_fer2013new_vote_rows(tmp_path):
    votes = _fer2013_with_votes(tmp_path, n=4)
    votes[1][2:] = [93, 10, 0, 0, 0, 0, 0, 0, 0, 0]
    votes[2][2:] = [0] * 10
    write_rows(tmp_path / "fer2013new.csv", [VOTES_HEADER, *votes])
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert _own_votes(ds) == [True, None, None, True]
    assert ds.problems.set_index("row")["kind"].to_dict() == {
        3: "invalid_votes",
        4: "invalid_votes",
    }
    assert ds.problems["sample_id"].tolist() == ["fer2013.csv#1", "fer2013.csv#2"]


# ------------------------------------------------------------------ 7: pixels that lie


def test_16_bit_png_and_float_tiff_decode_to_their_real_grey_levels(tmp_path):
    ramp = np.linspace(0, 255, 16)
    png16 = write_png16(tmp_path / "g16.png")
    unit = write_float_tiff(tmp_path / "unit.tif")
    byte = write_float_tiff(tmp_path / "byte.tif", high=255.0)
    for path in (png16, unit, byte):
        assert check_image(str(path)) is None
        grey = decode_image(path, size=16, channels=1)[..., 0]
        assert np.abs(grey[0].astype(float) - ramp).max() <= 1.0, path.name
        rgb = decode_image(path, size=16, channels=3)
        assert (rgb[..., 0] == grey).all()


def test_float_pixels_that_cannot_be_scaled_are_reported_by_inspect_and_decode(tmp_path):
    weird = write_float_tiff(tmp_path / "weird.tif", low=-3.0, high=900.0)
    kind, reason = check_image(str(weird))
    assert kind == "unsupported_pixels" and "-3" in reason
    with pytest.raises(DecodeError) as info:
        decode_image(weird, size=16, channels=1)
    assert info.value.kind == "unsupported_pixels"


@pytest.fixture()
def lying_images(tmp_path):
    return {
        "scan.jpg": write_corrupt_jpeg_scan(tmp_path / "scan.jpg"),
        "lie.png": write_lying_png(tmp_path / "lie.png"),
    }


def test_inspect_opens_every_pixel(lying_images):
    for name, path in lying_images.items():
        assert check_image(str(path))[0] == "corrupt_image", name


def test_an_affectnet_face_box_outside_the_image_is_found_by_inspect(tmp_path):
    images = tmp_path / "Manually_Annotated_Images" / "1"
    write_image(images / "a.jpg", size=64)
    write_image(images / "b.jpg", size=64)
    write_rows(
        tmp_path / "training.csv",
        [
            AFFECTNET_HEADER,
            affectnet_row("1/a.jpg", 3),
            ["1/b.jpg", 500, 500, 30, 40, "1;2", 3, 0.1, 0.1],
        ],
    )
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["Manually_Annotated_Images/1/a.jpg"]
    problem = ds.problems.iloc[0]
    assert (problem["kind"], problem["file"], problem["row"]) == (
        "malformed_row",
        "training.csv",
        3,
    )
    assert "outside" in problem["reason"]


def test_inspect_and_the_cache_exclude_the_same_images(tmp_path, lying_images):
    root = tmp_path / "data"
    write_image(root / "ok.png")
    write_png16(root / "g16.png")
    write_float_tiff(root / "weird.tif", low=-1.0, high=2.0)
    for name, path in lying_images.items():
        os.replace(path, root / name)
    rows = [["path", "label"]] + [
        [n, "sad"] for n in ("ok.png", "g16.png", "weird.tif", *lying_images)
    ]
    write_rows(root / "labels.csv", rows)
    inspected = read_dataset(root)
    _assert_complete(inspected)
    unchecked = read_dataset(root, check_images=False)
    for channels in (1, 3):
        cache = build_cache(unchecked.samples, size=16, channels=channels, cache_dir=tmp_path / "c")
        assert set(cache.problems["sample_id"]) == set(inspected.problems["sample_id"])
    assert sorted(inspected.samples["sample_id"]) == ["g16.png", "ok.png"]


# ------------------------------------------------------------------ 8: undecodable file names


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_is_read(tmp_path):
    write_image(tmp_path / "train" / "happy" / "a.png")
    bad = os.path.join(os.fsencode(tmp_path / "train" / "happy"), b"caf\xe9.png")
    write_image(Path(os.fsdecode(bad)))
    write_image(Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"\xff.png"))))
    ds = read_dataset(tmp_path)
    _assert_complete(ds)
    assert ds.samples["sample_id"].tolist() == ["train/happy/a.png"]
    kinds = ds.problems.set_index("file")["kind"].to_dict()
    assert kinds == {
        "train/happy/caf\\xe9.png": "invalid_file_name",
        "\\xff.png": "unlabeled_image",
    }
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "invalid_file_name" in result.output


def test_score_runs_past_an_undecodable_name_and_a_link(tmp_path, outside):
    from fercleaner.pipeline import score_dataset
    from fercleaner.synth import write_synthetic_dataset

    root = tmp_path / "faces"
    write_synthetic_dataset(root, n=24, layout="imagefolder", seed=0, noise_rate=0.0, size=32)
    happy = next(p for p in (root / "train").iterdir() if p.is_dir())
    write_image(Path(os.fsdecode(os.path.join(os.fsencode(happy), b"\xff.png"))), size=32)
    (happy / "link.png").symlink_to(outside / "outside.png")
    result = score_dataset(root, tmp_path / "run", recipe="quick", overrides=TINY_TRAINING)
    assert len(result.scores) == 24
    problems = pd.read_parquet(tmp_path / "run" / "problems.parquet")
    assert set(problems["kind"]) == {"invalid_file_name", "path_escapes_root"}


@pytest.mark.parametrize("flag", [[], ["--follow-links"]])
def test_score_passes_follow_links_to_the_reader(tmp_path, monkeypatch, flag):
    from fercleaner.errors import DatasetError

    seen = {}

    def read_dataset_stub(path, layout=None, **options):
        seen.update(options)
        raise DatasetError("stop before training")

    monkeypatch.setattr("fercleaner.datasets.read_dataset", read_dataset_stub)
    write_image(tmp_path / "data" / "happy" / "a.png")
    result = runner.invoke(
        app, ["score", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *flag]
    )
    assert "stop before training" in result.output
    assert seen["follow_links"] is bool(flag)
