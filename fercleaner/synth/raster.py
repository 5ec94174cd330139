"""Signed-distance shapes and alpha painting, evaluated for a whole batch of faces at once.

Every facial part and occluder is built from these few primitives, so anti-aliasing (a
one-pixel soft step on the distance) and "paint only the faces that have it" live in one place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: A per-face value broadcast against the pixel grid ((B, 1, 1) or (B, H, W)) or a constant.
Num = np.ndarray | float


def cover(dist: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a shape with signed distance `dist` (negative inside)."""
    out = dist / px
    np.subtract(0.5, out, out=out)
    np.minimum(out, 1.0, out=out)
    return np.maximum(out, 0.0, out=out)


def ellipse_sdf(u: Num, v: Num, cx: Num, cy: Num, ax: Num, ay: Num) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (exact for circles)."""
    du = (u - cx) / ax
    dv = (v - cy) / ay
    return (np.sqrt(du * du + dv * dv) - 1.0) * np.minimum(ax, ay)


def capsule_sdf(u: Num, v: Num, ax: Num, ay: Num, bx: Num, by: Num, radius: Num) -> np.ndarray:
    """Signed distance to a thick segment from (ax, ay) to (bx, by)."""
    pax, pay = u - ax, v - ay
    bax, bay = bx - ax, by - ay
    h = np.clip((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-9), 0.0, 1.0)
    dx, dy = pax - bax * h, pay - bay * h
    return np.sqrt(dx * dx + dy * dy) - radius


def hline_sdf(u: Num, v: Num, x0: Num, x1: Num, y: Num, radius: Num) -> np.ndarray:
    """Signed distance to a thick horizontal segment (x0, y)-(x1, y); cheaper than a capsule."""
    dx = np.abs(u - 0.5 * (x0 + x1))
    dx -= 0.5 * (x1 - x0)
    np.maximum(dx, 0.0, out=dx)
    dy = v - y
    return np.sqrt(dx * dx + dy * dy) - radius


def paint(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend `color` (B, C) into `img` (B, C, H, W) in place with `alpha` (B, H, W)."""
    img += alpha[:, None] * (color[:, :, None, None] - img)


def paint_gated(
    img: np.ndarray,
    gate: np.ndarray,
    color: np.ndarray,
    alpha_fn: Callable[[slice | np.ndarray], np.ndarray],
) -> None:
    """Paint only the faces whose `gate` (B, 1, 1) is on, with alpha `alpha_fn(selection)`.

    AU-driven details (wrinkles, dimples, teeth, occluders) are absent on most faces, so
    drawing them on the subset that has them saves most of their cost.
    """
    idx = np.flatnonzero(gate.reshape(len(gate), -1)[:, 0] > 0.01)
    if len(idx) == 0:
        return
    if len(idx) == len(img):
        paint(img, alpha_fn(slice(None)), color)
        return
    sub = img[idx]
    paint(sub, alpha_fn(idx), color[idx])
    img[idx] = sub


def col(value: np.ndarray) -> np.ndarray:
    """Per-face scalar (B,) -> (B, 1, 1) for broadcasting against the pixel grid."""
    return value[:, None, None]
