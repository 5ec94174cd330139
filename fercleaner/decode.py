"""Decode one sample to a fixed-size uint8 array: image file or pixel-CSV row, cropped, resized.

The single definition of "what pixels a sample has", used by the decoded-image cache
(and by anything that must reproduce its rows exactly). Failures raise `DecodeError`
with a problem kind from the problems table, never a substitute image.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from fercleaner.datasets.images import DEFAULT_MAX_PIXELS

#: Box = (x, y, w, h) in source pixels, or None for the whole image.
Box = tuple[int, int, int, int] | None


class DecodeError(Exception):
    """A sample that cannot be decoded; `kind` is a problems-table kind."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def decode_image(
    path: str | os.PathLike[str],
    *,
    size: int,
    channels: int,
    box: Box = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file to (size, size, channels) uint8.

    The face box, when given, is cropped first (clipped to the image); the result is
    resized to a square with bilinear filtering (no aspect-preserving crop, so no part
    of the face is lost). JPEGs are decoded at a reduced DCT scale when that still leaves
    at least `size` pixels across the box, which makes large photos cheap.

    Raises:
        DecodeError: kind `missing_file`, `empty_file`, `not_an_image`, `too_many_pixels`,
            `corrupt_image` or `malformed_row` (a box outside the image).
    """
    mode = "L" if channels == 1 else "RGB"
    try:
        with open(path, "rb") as fh:
            image = Image.open(fh)
            width, height = image.size
            if width * height > max_pixels:
                raise DecodeError(
                    "too_many_pixels",
                    f"{path} is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}",
                )
            crop = _clip_box(box, width, height, path)
            if image.format == "JPEG":
                crop = _draft(image, mode, crop, size=size, width=width)
            if image.mode != mode:
                image = image.convert(mode)
            if crop is not None:
                image = image.crop(crop)
            if image.size != (size, size):
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)
    except DecodeError:
        raise
    except FileNotFoundError:
        raise DecodeError("missing_file", f"image file {path} does not exist") from None
    except UnidentifiedImageError:
        if os.path.getsize(path) == 0:
            raise DecodeError("empty_file", f"{path} is empty (0 bytes)") from None
        raise DecodeError("not_an_image", f"{path} is not an image PIL can identify") from None
    except Image.DecompressionBombError as exc:
        raise DecodeError("too_many_pixels", f"{path}: {exc}") from None
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, struct.error...)
        raise DecodeError("corrupt_image", f"{path} is corrupt or truncated: {exc}") from None
    return pixels.reshape(size, size, channels)


def decode_pixels(pixels: str, *, size: int, channels: int, where: str = "") -> np.ndarray:
    """Decode a FER2013-style pixel string (space-separated grey values of a square image).

    Raises:
        DecodeError: kind `malformed_row` when the values are not a square of 0..255 integers.
    """
    try:
        values = np.array(pixels.split(), dtype=np.int32)
    except (ValueError, AttributeError):
        raise DecodeError(
            "malformed_row", f"{where}: pixels are not space-separated integers"
        ) from None
    side = math.isqrt(len(values))
    if side == 0 or side * side != len(values) or values.min() < 0 or values.max() > 255:
        raise DecodeError(
            "malformed_row",
            f"{where}: {len(values)} pixel values; expected a square image (e.g. 2304 = 48x48)"
            " of values in 0..255",
        )
    grey = values.astype(np.uint8).reshape(side, side)
    if side != size:
        grey = np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.BILINEAR))
    if channels == 3:
        return np.repeat(grey[:, :, None], 3, axis=2)
    return grey[:, :, None]


def _clip_box(box: Box, width: int, height: int, path) -> tuple[int, int, int, int] | None:
    """PIL crop box (left, upper, right, lower) clipped to the image; None = whole image."""
    if box is None:
        return None
    x, y, w, h = box
    left, upper = max(0, x), max(0, y)
    right, lower = min(width, x + w), min(height, y + h)
    if right - left < 1 or lower - upper < 1:
        raise DecodeError(
            "malformed_row",
            f"{path}: face box x={x} y={y} w={w} h={h} lies outside the {width}x{height} image",
        )
    if (left, upper, right, lower) == (0, 0, width, height):
        return None
    return left, upper, right, lower


def _draft(image, mode: str, crop, *, size: int, width: int):
    """Ask the JPEG decoder for a smaller DCT scale; rescale the crop box to match."""
    box_w = width if crop is None else crop[2] - crop[0]
    box_h = image.size[1] if crop is None else crop[3] - crop[1]
    scale_w = max(1, image.size[0] * size // max(box_w, 1))
    scale_h = max(1, image.size[1] * size // max(box_h, 1))
    image.draft(mode, (scale_w, scale_h))
    factor = width / image.size[0]
    if crop is None or factor == 1:
        return crop
    left, upper, right, lower = (int(round(c / factor)) for c in crop)
    return left, upper, max(right, left + 1), max(lower, upper + 1)
