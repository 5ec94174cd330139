"""Decode one sample to a fixed-size uint8 array: image file or pixel-CSV row, cropped, resized.

The single definition of "what pixels a sample has", used by the decoded-image cache
and by `inspect`'s image checks (`check_decodes`), so both exclude exactly the same
images. High bit depths are scaled, not clipped: a 16-bit PNG is divided by 257 and a
float image in [0, 1] multiplied by 255 (a float image in [0, 255] is taken as is);
pixels that cannot be mapped faithfully (negative or above range, NaN, a colour space
like LAB) are an `unsupported_pixels` problem. Failures raise `DecodeError` with a
problem kind from the problems table, never a substitute image.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from fercleaner.datasets.images import DEFAULT_MAX_PIXELS

#: Box = (x, y, w, h) in source pixels, or None for the whole image.
Box = tuple[int, int, int, int] | None

#: PIL modes that convert faithfully to 8-bit grey and RGB (after `_to_8bit` for I/F).
_SUPPORTED_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA"}  # bilevel, grey, palette (with alpha)
    | {"RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"}  # colour
    | {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}  # 16/32-bit integers, float
)
#: Side length `check_decodes` decodes at: small keeps JPEG checks cheap (DCT scaling).
_CHECK_SIZE = 48
#: EXIF orientation (tag 0x0112) -> the transpose that shows the photo upright, as a
#: viewer (and the person who labelled it) saw it; the same table as PIL's exif_transpose.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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

    The face box, when given, is cropped first (clipped to the image; in the stored pixel
    grid), then a photo with an EXIF orientation is turned upright; the result is
    resized to a square with bilinear filtering (no aspect-preserving crop, so no part
    of the face is lost). JPEGs are decoded at a reduced DCT scale when that still leaves
    at least `size` pixels across the box, which makes large photos cheap.

    Raises:
        DecodeError: kind `missing_file`, `empty_file`, `not_an_image`, `too_many_pixels`,
            `corrupt_image`, `unsupported_pixels` or `malformed_row` (a box outside the image).
    """
    mode = "L" if channels == 1 else "RGB"
    try:
        with open(path, "rb") as fh:
            image = Image.open(fh)
            width, height = image.size
            if width * height > max_pixels:
                raise DecodeError(
                    "too_many_pixels",
                    f"{path} is {width}x{height} = {width * height:,} pixels, "
                    f"over the limit of {max_pixels:,}",
                )
            crop = _clip_box(box, width, height, path)
            upright = _orientation_fix(image)
            if image.mode not in _SUPPORTED_MODES:
                raise DecodeError(
                    "unsupported_pixels",
                    f"{path} has pixel mode {image.mode}, which has no faithful 8-bit grey or RGB"
                    " version",
                )
            if image.format == "JPEG":
                crop = _draft(image, mode, crop, size=size, width=width)
            image = _to_8bit(image, path)
            if image.mode != mode:
                image = image.convert(mode)
            if crop is not None:
                image = image.crop(crop)
            if upright is not None:
                image = image.transpose(upright)
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


def _orientation_fix(image: Image.Image) -> Image.Transpose | None:
    """The transpose that shows `image` upright, or None; broken EXIF counts as none.

    Pillow raises on malformed EXIF blocks (SyntaxError, struct errors) that older
    decodes ignored, and a bad tag must not exclude an image whose pixels are fine.
    """
    try:
        return _UPRIGHT.get(image.getexif().get(0x0112))
    except Exception:
        return None


def check_decodes(
    path: str | os.PathLike[str], *, box: Box = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> None:
    """Decode `path` as the cache would, at a small size, and keep nothing.

    Raises `DecodeError` exactly when `decode_image` does for any size and channel count
    (the size only picks the JPEG DCT scale; every scan is still decoded), so a dataset
    check that calls this excludes what the cache would.
    """
    decode_image(path, size=_CHECK_SIZE, channels=1, box=box, max_pixels=max_pixels)


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


def _to_8bit(image: Image.Image, path) -> Image.Image:
    """16-bit and 32-bit integer or float grey (modes I;16*, I, F) -> 8-bit `L`, scaled.

    PIL's own conversion clips instead of scaling: a 16-bit face becomes near white and
    a float one in [0, 1] near black. Other modes are returned as they are.
    """
    mode = image.mode
    if mode not in ("I", "F") and not mode.startswith("I;16"):
        return image
    values = np.asarray(image)
    if mode == "F" and not np.isfinite(values).all():
        raise DecodeError("unsupported_pixels", f"{path} has NaN or infinite float pixels")
    low, high = float(values.min()), float(values.max())
    if mode.startswith("I;16"):
        scale = 1 / 257  # 0..65535 -> 0..255
    elif mode == "I" and low >= 0 and high <= 65535:
        scale = 1.0 if high <= 255 else 1 / 257  # 8-bit values stored wide, or 16-bit
    elif mode == "F" and low >= 0 and high <= 255:
        scale = 255.0 if high <= 1 else 1.0  # [0, 1] or [0, 255]
    else:
        expected = "0..65535" if mode == "I" else "[0, 1] or [0, 255]"
        raise DecodeError(
            "unsupported_pixels",
            f"{path} has {'float' if mode == 'F' else 'integer'} pixels from {low:g} to {high:g};"
            f" expected {expected}, so they cannot be mapped to grey levels faithfully",
        )
    grey = np.rint(values.astype(np.float64) * scale).clip(0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L")


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
