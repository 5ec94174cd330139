"""`resolve_channels`: a probe that skips images PIL refuses, whatever it raises."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from PIL import Image

from fercleaner.pipeline.inputs import resolve_channels


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
