"""The mouth and the creases around it, the part most AUs act on (AU10-AU26).

Its geometry (corners, lip lines, opening) is computed once as a `MouthShape`, because the
nasolabial folds, lips, teeth, AU14 dimple and chin crease are all placed from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fercleaner.synth.face_space import FaceSpace
from fercleaner.synth.parts import nostril_y
from fercleaner.synth.raster import capsule_sdf, cover, hline_sdf, paint, paint_gated


@dataclass(frozen=True)
class MouthShape:
    """Mouth geometry of a chunk of B faces, both halves (AU14 acts on one side only)."""

    my: np.ndarray
    """(B, 1, 1) height of the mouth line at rest."""
    side: np.ndarray
    """(B, 1, 1) -1 or 1: the side AU14 pulls."""
    half_w: np.ndarray
    """(B, 1, 1) half width of the mouth on the side AU14 leaves alone."""
    lift_side: np.ndarray
    """(B, 1, 1) how far the corners are lifted (AU12) or pulled down (AU15), before AU14."""
    s: np.ndarray
    """(B, H, W) lip-line profile: 1 at the centre of the mouth, 0 at the corners."""
    y_up: np.ndarray
    """(B, H, W) upper edge of the opening."""
    y_lo: np.ndarray
    """(B, H, W) lower edge of the opening."""
    lip_t: np.ndarray
    """(B, 1, 1) lip thickness (thinner when tightened or pressed)."""
    h_cover: np.ndarray
    """(B, H, W) coverage of the mouth's horizontal extent, corner to corner."""


def draw_mouth(img: np.ndarray, f: FaceSpace) -> None:
    """Nasolabial folds, lips, opening, teeth, AU14 dimple and AU17 chin crease, in that order."""
    m = mouth_shape(f)
    _draw_folds(img, f, m)
    _draw_lips_and_teeth(img, f, m)
    _draw_dimple(img, f, m)
    _draw_chin_crease(img, f, m)


def mouth_shape(f: FaceSpace) -> MouthShape:
    """Corners up and out (AU12), down (AU15), stretched (AU20), tightened (AU23/24); lips
    raised (AU10), lowered (AU16) or pushed up (AU17); parted (AU25) and jaw dropped (AU26)."""
    u, px, au = f.u, f.px, f.au
    my = f.col("mouth_y")
    mw = f.col("mouth_w")
    side = f.col("au14_side")
    tight = np.maximum(au[23], au[24])
    half_w = mw * (1.0 + 0.3 * au[12] + 0.35 * au[20] - 0.25 * au[23] - 0.12 * au[24])
    lift_side = 0.17 * au[12] - 0.16 * au[15] - 0.05 * au[20] + 0.03 * au[10] - 0.04 * au[16]
    on_side = (u * side) > 0  # the side AU14 acts on
    hw = np.where(on_side, half_w * (1.0 + 0.12 * au[14]), half_w)
    lift_c = np.where(on_side, lift_side + 0.2 * au[14], lift_side)
    t = u / hw
    s = np.sqrt(np.clip(1.0 - t * t, 0.0, 1.0))
    mid = my - lift_c * t * t - 0.02 * au[17] * s
    gap = (0.015 + 0.11 * au[25] + 0.24 * au[26]) * (1.0 - 0.8 * tight)
    y_up = mid - (0.35 * gap + 0.045 * au[10]) * s
    y_lo = mid + (0.65 * gap + 0.035 * au[16]) * s
    lip_t = f.col("lip_t") * (1.0 - 0.6 * tight)
    h_cover = cover((np.abs(t) - 1.0) * hw, px)
    return MouthShape(
        my=my,
        side=side,
        half_w=half_w,
        lift_side=lift_side,
        s=s,
        y_up=y_up,
        y_lo=y_lo,
        lip_t=lip_t,
        h_cover=h_cover,
    )


def _draw_folds(img: np.ndarray, f: FaceSpace, m: MouthShape) -> None:
    """Nasolabial folds from the nostrils to the corners, deepened by AU10, AU9, AU12 and AU6."""
    au = f.au
    fold_a = np.clip(0.15 + 0.7 * au[10] + 0.4 * au[9] + 0.5 * au[12] + 0.2 * au[6], 0, 0.9)
    end_x, end_y = m.half_w + 0.07, m.my + 0.02 - m.lift_side
    fold = capsule_sdf(f.abs_u, f.v, 0.12, nostril_y(f) - 0.02, end_x, end_y, 0.012)
    paint(img, fold_a * cover(fold, f.px), f.colors["line"])


def _draw_lips_and_teeth(img: np.ndarray, f: FaceSpace, m: MouthShape) -> None:
    """Lips, then the dark opening over them, then teeth (AU12, AU10, AU25) in its top."""
    v, px, au = f.v, f.px, f.au
    s, y_up, y_lo = m.s, m.y_up, m.y_lo
    lips = (
        m.h_cover * cover((y_up - m.lip_t * s) - v, px) * cover(v - (y_lo + 1.3 * m.lip_t * s), px)
    )
    paint(img, lips, f.colors["lip"])
    opening = m.h_cover * cover(y_up - v, px) * cover(v - y_lo, px)
    paint(img, opening, f.colors["mouth"])
    teeth_a = np.clip(au[12] + au[10] + 0.5 * au[25], 0, 0.9)
    paint_gated(
        img,
        teeth_a,
        f.colors["teeth"],
        lambda k: (
            teeth_a[k]
            * opening[k]
            * cover(v[k] - (y_up[k] + np.minimum(0.045, 0.45 * (y_lo[k] - y_up[k]))), px[k])
        ),
    )


def _draw_dimple(img: np.ndarray, f: FaceSpace, m: MouthShape) -> None:
    """AU14 dimpler: a crease just outside the pulled corner, on its side only."""
    u, v, px, au, side = f.u, f.v, f.px, f.au, m.side
    corner_x = side * (m.half_w * (1.0 + 0.12 * au[14]) + 0.035)
    corner_y = m.my - m.lift_side - 0.2 * au[14]
    dimple_a = np.clip(1.2 * au[14], 0, 0.9)
    paint_gated(
        img,
        dimple_a,
        f.colors["line"],
        lambda k: (
            dimple_a[k]
            * cover(
                capsule_sdf(
                    u[k],
                    v[k],
                    corner_x[k],
                    corner_y[k] - 0.05,
                    corner_x[k] + side[k] * 0.03,
                    corner_y[k] + 0.06,
                    0.014,
                ),
                px[k],
            )
        ),
    )


def _draw_chin_crease(img: np.ndarray, f: FaceSpace, m: MouthShape) -> None:
    """AU17 (chin raiser): a short crease below the lower lip."""
    u, v, px, au = f.u, f.v, f.px, f.au
    chin_y = m.my + 0.2 - 0.03 * au[17]
    paint_gated(
        img,
        au[17],
        f.colors["line"],
        lambda k: (
            0.6 * au[17][k] * cover(hline_sdf(u[k], v[k], -0.1, 0.1, chin_y[k], 0.012), px[k])
        ),
    )
