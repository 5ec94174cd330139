"""Layout auto-detection says why each layout matched or not; bad paths raise clear errors."""

from __future__ import annotations

import pytest
from _dataset_files import (
    AFFECTNET_HEADER,
    affectnet_row,
    ferplus_row,
    pixels,
    write_image,
    write_rows,
)

from fercleaner.datasets import detect_layout, explain_layouts, list_layouts, read_dataset
from fercleaner.errors import ConfigError, DatasetError, RegistryError


def test_layouts_are_registered_specific_first():
    assert list_layouts() == ["ferplus", "fer2013", "rafdb", "affectnet", "csv", "imagefolder"]


def test_each_layout_is_detected_with_its_reason(tmp_path):
    cases = {}
    cases["ferplus"] = tmp_path / "fp"
    write_rows(
        cases["ferplus"] / "FER2013Valid" / "label.csv", [ferplus_row("a.png", [10] + [0] * 9)]
    )
    cases["fer2013"] = tmp_path / "f13"
    write_rows(
        cases["fer2013"] / "fer2013.csv",
        [["emotion", "pixels", "Usage"], [0, pixels(), "Training"]],
    )
    cases["rafdb"] = tmp_path / "raf"
    (cases["rafdb"] / "EmoLabel").mkdir(parents=True)
    (cases["rafdb"] / "EmoLabel" / "list_patition_label.txt").write_text("train_1.jpg 1\n")
    cases["affectnet"] = tmp_path / "an"
    write_rows(
        cases["affectnet"] / "validation.csv", [AFFECTNET_HEADER, affectnet_row("1/a.jpg", 0)]
    )
    cases["csv"] = tmp_path / "c"
    write_rows(cases["csv"] / "labels.csv", [["path", "label"], ["a.png", "sad"]])
    cases["imagefolder"] = tmp_path / "if"
    write_image(cases["imagefolder"] / "val" / "happy" / "a.png")
    markers = {
        "ferplus": "FER2013Valid/label.csv",
        "fer2013": "fer2013.csv",
        "rafdb": "list_patition_label.txt",
        "affectnet": "validation.csv",
        "csv": "labels.csv",
        "imagefolder": "val/",
    }
    for name, folder in cases.items():
        detected, reason = detect_layout(folder)
        assert detected == name
        assert markers[name] in reason


def test_a_manifest_or_pixel_file_given_directly(tmp_path):
    write_rows(tmp_path / "mine.csv", [["path", "label", "split"], ["a.png", "sad", "val"]])
    assert detect_layout(tmp_path / "mine.csv")[0] == "csv"
    write_rows(
        tmp_path / "fer2013.csv", [["emotion", "pixels", "Usage"], [0, pixels(), "Training"]]
    )
    assert detect_layout(tmp_path / "fer2013.csv")[0] == "fer2013"
    write_rows(tmp_path / "other.csv", [["file", "emotion"], ["a.png", "sad"]])
    matches = dict(explain_layouts(tmp_path / "other.csv"))
    assert not any(d.matched for d in matches.values())
    assert "expected path,label" in matches["csv"].reason


def test_unmatched_folder_lists_what_every_layout_looked_for(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError) as info:
        read_dataset(tmp_path)
    message = str(info.value)
    for name in list_layouts():
        assert f"- {name}:" in message
    assert "FER2013Train/label.csv" in message and "found stuff/" in message
    assert "labels.csv" in message


def test_missing_path_and_wrong_or_unknown_layout(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")
    write_image(tmp_path / "sad" / "a.png")
    with pytest.raises(DatasetError, match="is not a rafdb dataset.*It looks like: imagefolder"):
        read_dataset(tmp_path, "rafdb")
    with pytest.raises(RegistryError, match="Did you mean 'ferplus'"):
        read_dataset(tmp_path, "ferplu")


def test_explicit_layout_reads_a_folder_detection_would_also_pick(tmp_path):
    write_image(tmp_path / "sad" / "a.png")
    ds = read_dataset(tmp_path, "imagefolder")
    assert ds.layout == "imagefolder" and "class folders sad/" in ds.detection


def test_an_unreadable_label_file_is_a_dataset_error(tmp_path, monkeypatch):
    write_rows(tmp_path / "labels.csv", [["path", "label"], ["a.png", "sad"]])

    def refuse(manifest):
        raise PermissionError(13, "Permission denied", str(manifest))

    monkeypatch.setattr("fercleaner.datasets.labels_csv._records", refuse)
    with pytest.raises(DatasetError, match="cannot read .*labels.csv: Permission denied"):
        read_dataset(tmp_path)


def test_options_are_checked_and_progress_is_reported(tmp_path):
    for i in range(3):
        write_image(tmp_path / "sad" / f"{i}.png", seed=i)
    with pytest.raises(ConfigError, match="max_pixels=0"):
        read_dataset(tmp_path, max_pixels=0)
    calls = []
    ds = read_dataset(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert len(ds.samples) == 3 and calls[-1] == (3, 3)
    assert calls[0] == (0, 0)  # before the samples are listed: started, count not known
    assert calls.count((3, 3)) == 1  # the image checks' own last report ends it, once
    calls.clear()
    read_dataset(tmp_path, check_images=False, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 0), (3, 3)]  # no image checked on the way: the end is still reported
