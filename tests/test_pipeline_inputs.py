"""`resolve_channels`: a probe that skips images PIL refuses, whatever it raises."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fercleaner.errors import DatasetError
from fercleaner.pipeline.inputs import read_samples, resolve_channels


def _dataset(paths):
    return SimpleNamespace(samples=pd.DataFrame({"path": [str(p) for p in paths]}))


def _save(path, array):
    Image.fromarray(array).save(path)
    return path


def test_grey_and_colour_images_decide_the_channels(tmp_path):
    grey = _save(tmp_path / "grey.png", np.full((8, 8), 120, np.uint8))
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 200
    red = _save(tmp_path / "red.png", colour)
    assert resolve_channels("auto", _dataset([grey])) == 1
    assert resolve_channels("auto", _dataset([grey, red])) == 3
    assert resolve_channels(3, _dataset([grey])) == 3


def test_a_decompression_bomb_or_garbage_is_skipped_not_raised(tmp_path, monkeypatch):
    big = np.zeros((64, 64, 3), np.uint8)
    big[..., 2] = 255
    bomb = _save(tmp_path / "bomb.png", big)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    grey = _save(tmp_path / "grey.png", np.full((8, 8), 7, np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64*64 > 2 * 100: PIL refuses it
    assert resolve_channels("auto", _dataset([bomb, garbage, grey])) == 1


def _outside_manifest(tmp_path):
    """labels.csv in data/ whose two rows name images outside it by absolute path."""
    for name in ("a.png", "b.png"):
        _save(tmp_path / name, np.full((8, 8), 9, np.uint8))
    root = tmp_path / "data"
    root.mkdir()
    rows = "".join(f"{tmp_path / n},happy\n" for n in ("a.png", "b.png"))
    (root / "labels.csv").write_text("path,label\n" + rows)
    return root


def test_read_samples_passes_allow_outside_root(tmp_path):
    recipe = SimpleNamespace(data=SimpleNamespace(layout=None))
    dataset = read_samples(_outside_manifest(tmp_path), recipe, None, allow_outside_root=True)
    assert sorted(dataset.samples["path"]) == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]


def test_a_dataset_without_one_usable_row_names_its_first_problem(tmp_path):
    """It used to fail after decoding as "no samples ... in the training splits"."""
    recipe = SimpleNamespace(data=SimpleNamespace(layout=None))
    with pytest.raises(DatasetError) as caught:
        read_samples(_outside_manifest(tmp_path), recipe, None)
    message = str(caught.value)
    assert "none of the 2 label rows" in message and "path_escapes_root 2" in message
    assert f"labels.csv row 2: path '{tmp_path / 'a.png'}' lies outside" in message
    assert "--allow-outside-root" in message and "splits" not in message
