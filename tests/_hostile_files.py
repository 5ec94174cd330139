"""Hostile but realistic files for the reader tests: high bit depth, lying headers, bad scans.

Each writer makes one small file that a careless reader accepts but whose pixels are wrong
or undecodable; the tests assert `inspect` (read_dataset) and the decoder agree on them.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_png16(path: Path, *, size: int = 16) -> Path:
    """A 16-bit greyscale PNG: a left-to-right ramp over the full 0..65535 range."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 65535, size, dtype=np.float64).round().astype(np.uint16)
    Image.fromarray(np.tile(ramp, (size, 1))).save(path)
    return path


def write_float_tiff(path: Path, *, size: int = 16, low: float = 0.0, high: float = 1.0) -> Path:
    """A 32-bit float greyscale TIFF: a left-to-right ramp from `low` to `high`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(low, high, size, dtype=np.float32)
    Image.fromarray(np.tile(ramp, (size, 1))).save(path)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_lying_png(path: Path, *, width: int = 65535, height: int = 1) -> Path:
    """A PNG whose header says `width`x`height` but whose (valid, CRC-correct) data is short."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" + b"\x80" * 100)  # one filter byte + 100 of `width` pixels
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )
    return path


def write_corrupt_jpeg_scan(path: Path, *, size: int = 64) -> Path:
    """A JPEG whose entropy-coded scan is garbage but which still ends with the EOI marker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    data = bytearray(path.read_bytes())
    scan = data.find(b"\xff\xda") + 20  # past the start-of-scan header
    for i in range(scan, len(data) - 2):
        data[i] = 0xFF if i % 7 == 0 else data[i] ^ 0x5A
    assert data.endswith(b"\xff\xd9")
    path.write_bytes(bytes(data))
    return path
