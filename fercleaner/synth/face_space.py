"""Face geometry shared by every part: pixel centres mapped into each face's own face space.

The inverse pose (shift, rotate, scale) is computed once per chunk, together with the AU
lookup and the colours in the output's channel count, so each part only places shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fercleaner.priors import AU_IDS
from fercleaner.synth.raster import col

#: Half extent of the image in face units: the face fills the frame like a FER crop.
IMAGE_HALF_EXTENT = 1.1
#: ITU-R BT.601 luma weights, used to turn every RGB colour into a grey level.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

#: Per-face arrays, first axis N (see `fercleaner.synth.faces`).
Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class FaceSpace:
    """One chunk of B faces in face space (centre at the origin, half-width ~0.8, y down)."""

    p: Params
    """The chunk's rows of the face parameters."""
    au: dict[int, np.ndarray]
    """AU id -> intensity (B, 1, 1); the columns of `p['au']` follow `AU_IDS`."""
    colors: dict[str, np.ndarray]
    """Colour name (`rgb_<name>` in `p`) -> (B, C), already grey when C is 1."""
    u: np.ndarray
    """(B, H, W) face-space x of each pixel centre."""
    v: np.ndarray
    """(B, H, W) face-space y of each pixel centre (down)."""
    abs_u: np.ndarray
    """|u|: most features are mirror images, so both sides are drawn at once."""
    px: np.ndarray
    """(B, 1, 1) one pixel in face units (the anti-aliasing width)."""

    def col(self, key: str) -> np.ndarray:
        """Face parameter `key` as (B, 1, 1), for broadcasting against the pixel grid."""
        return col(self.p[key])


def to_face_space(p: Params, *, size: int, channels: int) -> FaceSpace:
    """Map the pixel centres of a `size` x `size` image into the face space of each face in `p`."""
    colors = {k[4:]: v for k, v in p.items() if k.startswith("rgb_")}
    if channels == 1:
        colors = {k: (v @ _LUMA)[:, None] for k, v in colors.items()}
    au = {au_id: col(p["au"][:, i]) for i, au_id in enumerate(AU_IDS)}

    # pixel centres -> face space (inverse pose: shift, rotate, scale)
    axis = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0) * IMAGE_HALF_EXTENT
    gx, gy = axis[None, None, :], axis[None, :, None]
    cos, sin = col(np.cos(p["pose_rot"])), col(np.sin(p["pose_rot"]))
    scale = col(p["pose_scale"])
    dx, dy = gx - col(p["pose_dx"]), gy - col(p["pose_dy"])
    u = (cos * dx + sin * dy) / scale  # (B, H, W)
    v = (-sin * dx + cos * dy) / scale
    px = 2.0 * IMAGE_HALF_EXTENT / size / scale  # (B, 1, 1)
    return FaceSpace(p=p, au=au, colors=colors, u=u, v=v, abs_u=np.abs(u), px=px)
