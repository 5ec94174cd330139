"""Occluders painted over the finished face: glasses and a hand (`--occlusion`).

No AU moves them: they hide part of the face the way real FER photos often do, so a
method is also tested on partly hidden expressions (`occluder` 1 = glasses, 2 = hand).
"""

from __future__ import annotations

import numpy as np

from fercleaner.synth.face_space import FaceSpace
from fercleaner.synth.raster import col, cover, ellipse_sdf, hline_sdf, paint_gated


def draw_occluders(img: np.ndarray, f: FaceSpace) -> None:
    """Glasses on the faces whose `occluder` is 1, a hand on those whose `occluder` is 2."""
    _draw_glasses(img, f)
    _draw_hand(img, f)


def _draw_glasses(img: np.ndarray, f: FaceSpace) -> None:
    """Tinted or dark lenses, then the rims and the bridge over them."""
    u, v, abs_u, px = f.u, f.v, f.abs_u, f.px
    ex, ey, ew = f.col("eye_x"), f.col("eye_y"), f.col("eye_w")
    glasses = col((f.p["occluder"] == 1).astype(np.float32))
    shade = f.col("lens_shade")

    def lens(k: slice | np.ndarray) -> np.ndarray:
        return ellipse_sdf(abs_u[k], v[k], ex[k], ey[k], ew[k] + 0.09, 0.15)

    def rims(k: slice | np.ndarray) -> np.ndarray:
        bridge = hline_sdf(u[k], v[k], -0.12, 0.12, ey[k] - 0.04, 0.018)
        return cover(np.minimum(np.abs(lens(k)) - 0.018, bridge), px[k])

    paint_gated(img, glasses, f.colors["frame"], lambda k: shade[k] * cover(lens(k), px[k]))
    paint_gated(img, glasses, f.colors["frame"], rims)


def _draw_hand(img: np.ndarray, f: FaceSpace) -> None:
    """A palm over the lower face with three dark finger gaps across it."""
    u, v, px = f.u, f.v, f.px
    hand = col((f.p["occluder"] == 2).astype(np.float32))
    hx, hy, hr = f.col("hand_x"), f.col("hand_y"), f.col("hand_r")
    paint_gated(
        img,
        hand,
        f.colors["hand"],
        lambda k: cover(ellipse_sdf(u[k], v[k], hx[k], hy[k], hr[k], hr[k] * 0.8), px[k]),
    )
    for j in (-1, 0, 1):

        def gap(k: slice | np.ndarray, j: int = j) -> np.ndarray:
            x0, x1 = hx[k] - hr[k] * 0.8, hx[k] + hr[k] * 0.1
            return 0.5 * cover(hline_sdf(u[k], v[k], x0, x1, hy[k] + j * hr[k] * 0.4, 0.01), px[k])

        paint_gated(img, hand, f.colors["line"], gap)
