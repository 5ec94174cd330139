"""Painting of each facial part above the mouth: background, head, cheeks, forehead, brows,
eyes and nose, each a function of the AUs that move it (the table in `fercleaner.synth.render`).

Each `draw_*` paints into a float32 (B, C, H, W) image in place; `render` calls them back to
front.
"""

from __future__ import annotations

import numpy as np

from fercleaner.synth.face_space import FaceSpace
from fercleaner.synth.raster import capsule_sdf, cover, ellipse_sdf, hline_sdf, paint, paint_gated


def new_canvas(f: FaceSpace) -> np.ndarray:
    """A new float32 (B, C, H, W) image holding the background and its vertical gradient."""
    b, size = f.u.shape[0], f.u.shape[-1]
    channels = f.colors["bg"].shape[1]
    img = np.empty((b, channels, size, size), dtype=np.float32)
    img[:] = f.colors["bg"][:, :, None, None]
    paint(img, np.clip(0.5 + 0.4 * f.v, 0, 1) * f.col("bg_grad"), f.colors["bg2"])
    return img


def draw_head(img: np.ndarray, f: FaceSpace) -> None:
    """Hair mass behind, face ellipse (the jaw drops with AU26), fringe over the forehead."""
    u, v, px, au = f.u, f.v, f.px, f.au
    fw, ft, fb = f.col("face_w"), f.col("face_top"), f.col("face_bot")
    fb = fb + 0.12 * au[26] + 0.04 * au[25]
    hair_on = f.col("hair_on")
    paint(
        img,
        hair_on * cover(ellipse_sdf(u, v, 0.0, -0.12, fw + 0.1, ft + 0.1), px),
        f.colors["hair"],
    )
    face_ry = np.where(v < 0, ft, fb)
    face = cover(ellipse_sdf(u, v, 0.0, 0.0, fw, face_ry), px)
    paint(img, face, f.colors["skin"])
    paint(img, hair_on * face * cover(v - f.col("hairline"), px), f.colors["hair"])


def draw_cheeks(img: np.ndarray, f: FaceSpace) -> None:
    """AU6: raised, lit cheek apples and a crease under the lower lid (deepened by AU7)."""
    abs_u, v, px, au = f.abs_u, f.v, f.px, f.au
    ex, ey, ew = f.col("eye_x"), f.col("eye_y"), f.col("eye_w")
    paint_gated(
        img,
        au[6],
        f.colors["cheek"],
        lambda k: (
            0.45
            * au[6][k]
            * cover(ellipse_sdf(abs_u[k], v[k], ex[k] + 0.03, ey[k] + 0.32, 0.17, 0.11), px[k] * 4)
        ),
    )
    crease_a = np.clip(0.8 * au[6] + 0.4 * au[7], 0, 0.9)
    paint_gated(
        img,
        crease_a,
        f.colors["line"],
        lambda k: (
            crease_a[k]
            * cover(
                capsule_sdf(
                    abs_u[k],
                    v[k],
                    ex[k] - ew[k],
                    ey[k] + 0.12,
                    ex[k] + ew[k] * 1.1,
                    ey[k] + 0.15,
                    0.012,
                ),
                px[k],
            )
        ),
    )


def draw_forehead(img: np.ndarray, f: FaceSpace) -> None:
    """Horizontal lines for raised brows (AU1/AU2), vertical furrows between them for AU4."""
    u, v, abs_u, px, au = f.u, f.v, f.abs_u, f.px, f.au
    brow_y = _brow_rest_y(f)
    dark = f.colors["line"]
    lift = np.clip(0.8 * np.maximum(au[1], au[2]), 0, 1)
    for off in (0.16, 0.27):
        paint_gated(
            img,
            lift,
            dark,
            lambda k, off=off: (
                lift[k] * cover(hline_sdf(u[k], v[k], -0.3, 0.3, brow_y[k] - off, 0.013), px[k])
            ),
        )
    furrow_a = np.clip(0.9 * au[4], 0, 1)
    paint_gated(
        img,
        furrow_a,
        dark,
        lambda k: (
            furrow_a[k]
            * cover(
                hline_sdf(v[k], abs_u[k], brow_y[k] - 0.12, brow_y[k] + 0.04, 0.055, 0.013), px[k]
            )
        ),
    )


def draw_brows(img: np.ndarray, f: FaceSpace) -> None:
    """Inner end raised by AU1, outer by AU2; AU4 lowers them and pulls them together."""
    au = f.au
    ex, ew = f.col("eye_x"), f.col("eye_w")
    brow_y = _brow_rest_y(f)
    inner_x = 0.1 - 0.05 * au[4]
    inner_y = brow_y - 0.17 * au[1] + 0.12 * au[4]
    outer_x = ex + ew * 1.15
    outer_y = brow_y - 0.15 * au[2] + 0.03 * au[4]
    mid_x = ex
    mid_y = 0.5 * (inner_y + outer_y) - 0.03 - 0.05 * au[2]
    thick = f.col("brow_thick")
    brow = np.minimum(
        capsule_sdf(f.abs_u, f.v, inner_x, inner_y, mid_x, mid_y, thick),
        capsule_sdf(f.abs_u, f.v, mid_x, mid_y, outer_x, outer_y, thick * 0.8),
    )
    paint(img, cover(brow, f.px), f.colors["brow"])


def draw_eyes(img: np.ndarray, f: FaceSpace) -> None:
    """Lid outline, sclera, iris; the opening is widened by AU5, narrowed by AU7 and AU6."""
    abs_u, v, px, au = f.abs_u, f.v, f.px, f.au
    ex, ey, ew = f.col("eye_x"), f.col("eye_y"), f.col("eye_w")
    eh = ew * 0.42 * (1.0 + 1.1 * au[5] - 0.55 * au[7] - 0.4 * au[6])
    eh = np.maximum(eh, 0.012)
    lid = ellipse_sdf(abs_u, v, ex, ey, ew + 0.02, eh + 0.022)
    paint(img, 0.85 * cover(lid, px), f.colors["line"])
    sclera = cover(ellipse_sdf(abs_u, v, ex, ey, ew, eh), px)
    paint(img, sclera, f.colors["sclera"])
    iris_r = f.col("iris_r")
    iris = cover(ellipse_sdf(abs_u, v, ex, ey, iris_r, iris_r), px)
    paint(img, sclera * iris, f.colors["iris"])


def draw_nose(img: np.ndarray, f: FaceSpace) -> None:
    """AU9 wrinkles the bridge, flares and lifts the nostrils; AU10 lifts them a bit."""
    u, v, px, au = f.u, f.v, f.px, f.au
    ey = f.col("eye_y")
    wrinkle_a = np.clip(0.9 * au[9], 0, 1)
    for off in (0.06, 0.12):
        paint_gated(
            img,
            wrinkle_a,
            f.colors["line"],
            lambda k, off=off: (
                wrinkle_a[k] * cover(hline_sdf(u[k], v[k], -0.07, 0.07, ey[k] + off, 0.012), px[k])
            ),
        )
    ny = nostril_y(f)
    nostril = ellipse_sdf(f.abs_u, v, 0.07 + 0.025 * au[9], ny, 0.04 + 0.01 * au[9], 0.022)
    paint(img, 0.7 * cover(nostril, px), f.colors["line"])


def nostril_y(f: FaceSpace) -> np.ndarray:
    """Height of the nostrils (B, 1, 1), lifted by AU9 and AU10; the nasolabial folds start here."""
    return f.col("nose_y") - 0.05 * f.au[9] - 0.02 * f.au[10]


def _brow_rest_y(f: FaceSpace) -> np.ndarray:
    """Height of the brows (B, 1, 1) before the AUs move them."""
    return f.col("eye_y") - f.col("brow_gap")
