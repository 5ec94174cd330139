"""`decode_image`: photos with an EXIF orientation come out upright, boxes in stored pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fercleaner.decode import decode_image


def _top_white(path, *, orientation: int | None, fmt: str):
    """32x32 grey, top half white as stored; the EXIF tag says how a viewer turns it."""
    pixels = np.zeros((32, 32), np.uint8)
    pixels[:16] = 255
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return path


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize(
    ("orientation", "white"),
    [(None, "top"), (1, "top"), (3, "bottom"), (6, "right"), (8, "left")],
)
def test_the_exif_orientation_turns_the_photo_upright(tmp_path, fmt, orientation, white):
    path = _top_white(tmp_path / f"face.{fmt.lower()}", orientation=orientation, fmt=fmt)
    grey = decode_image(path, size=16, channels=1)[..., 0].astype(float)
    halves = {
        "top": (grey[:8], grey[8:]),
        "bottom": (grey[8:], grey[:8]),
        "left": (grey[:, :8], grey[:, 8:]),
        "right": (grey[:, 8:], grey[:, :8]),
    }
    bright, dark = halves[white]
    assert bright.mean() > 200 and dark.mean() < 55


def test_a_face_box_is_cut_from_the_stored_pixels_before_turning(tmp_path):
    path = _top_white(tmp_path / "face.png", orientation=6, fmt="PNG")
    # the stored top-left quarter is all white, whichever way the photo is shown
    assert decode_image(path, size=8, channels=1, box=(0, 0, 16, 16)).min() == 255
    # the stored left half (white top, dark bottom), turned upright: white on the right
    half = decode_image(path, size=8, channels=1, box=(0, 0, 16, 32))[..., 0].astype(float)
    assert half[:, 4:].mean() > 200 and half[:, :4].mean() < 55


def test_broken_exif_decodes_as_stored(tmp_path, monkeypatch):
    """Pillow raises on malformed EXIF; the pixels are fine, so the image is kept."""
    path = _top_white(tmp_path / "face.png", orientation=6, fmt="PNG")

    def malformed(self):
        raise SyntaxError("not a TIFF file (header b'' not valid)")

    monkeypatch.setattr(Image.Image, "getexif", malformed)
    grey = decode_image(path, size=16, channels=1)[..., 0].astype(float)
    assert grey[:8].mean() > 200 and grey[8:].mean() < 55  # as stored: white on top
