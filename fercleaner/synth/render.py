"""Vectorised rasteriser for procedural faces: a whole batch is drawn with array ops.

Every face lives in its own normalised "face space" (face centre at the origin, face
half-width about 0.8, y pointing down). Pose jitter is an inverse affine map from pixel
centres into face space, so each primitive is one signed-distance field evaluated for
all faces at once, and anti-aliasing comes from a one-pixel soft step on that distance.
Geometry is driven by the AU intensities in `params` (see `fercleaner.synth.faces`):

    AU1 / AU2   inner / outer brow raised; forehead lines
    AU4         brows lowered and drawn together; vertical furrows between them
    AU5 / AU7   eye opening widened / narrowed (lid tightener also deepens the lower lid)
    AU6         cheek apples raised and lit, crease under the eye, eyes narrowed
    AU9         nose wrinkles, nostrils lifted and flared
    AU10        upper lip raised (teeth show), nostrils lifted, nasolabial folds deepened
    AU12        mouth corners up and out, teeth, nasolabial folds
    AU14        one corner pulled up and out with a dimple (side chosen per face)
    AU15 / AU20 mouth corners down / stretched sideways
    AU16 / AU17 lower lip lowered / raised with a chin crease
    AU23 / AU24 lips tightened / pressed: narrower, thinner lips, smaller opening
    AU25 / AU26 lips parted / jaw dropped: mouth opening, longer face
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fercleaner._pool import run_jobs
from fercleaner.priors import AU_IDS

#: Half extent of the image in face units: the face fills the frame like a FER crop.
IMAGE_HALF_EXTENT = 1.1
#: Faces rendered per inner batch: (B, H, W) temporaries stay in CPU cache (32 measured fastest).
_CHUNK = 32
#: Faces per parallel work item (a multiple of _CHUNK, so chunk k always holds the same faces).
_SPAN = 32 * _CHUNK
#: ITU-R BT.601 luma weights, used to turn every RGB colour into a grey level.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

Params = dict[str, np.ndarray]


def render_faces(
    params: Params,
    *,
    size: int,
    channels: int,
    noise_seed: int,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Draw every face described by `params`.

    Args:
        params: per-face arrays, first axis N (see `fercleaner.synth.faces`).
        size: output side in pixels.
        channels: 1 (grey) or 3 (RGB).
        noise_seed: seeds the pixel noise; chunk k uses `(noise_seed, k)`, so the output
            does not depend on `workers` or on how the caller batches.
        workers: processes drawing spans of chunks in parallel (1 = this process).
        progress: called as `progress(done, total)` as chunks finish.

    Returns:
        uint8 array (N, size, size) for grey, (N, size, size, 3) for RGB.
    """
    n = len(params["au"])
    shape = (n, size, size) if channels == 1 else (n, size, size, 3)
    out = np.empty(shape, dtype=np.uint8)
    spans = [(start, min(start + _SPAN, n)) for start in range(0, n, _SPAN)]
    done = 0

    def collect(i: int, images: np.ndarray) -> None:
        nonlocal done
        start, stop = spans[i]
        out[start:stop] = images
        done += stop - start
        if progress is not None:
            progress(done, n)

    jobs = [
        (
            {k: v[start:stop] for k, v in params.items()},
            start,
            stop,
            size,
            channels,
            noise_seed,
            start,
        )
        for start, stop in spans
    ]
    run_jobs(_render_span, jobs, workers=workers, on_done=collect)
    return out


def _render_span(
    params: Params,
    start: int,
    stop: int,
    size: int,
    channels: int,
    noise_seed: int,
    offset: int = 0,
) -> np.ndarray:
    """Faces `start:stop` (indices into the full set; `params` rows begin at `offset`)."""
    parts = []
    for first in range(start, stop, _CHUNK):
        last = min(first + _CHUNK, stop)
        chunk = {key: value[first - offset : last - offset] for key, value in params.items()}
        img = _render_chunk(chunk, size=size, channels=channels)  # (B, C, H, W) in [0, 1]
        rng = np.random.default_rng([noise_seed, first // _CHUNK])
        img = _blur_and_noise(img, chunk, rng=rng)
        img = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        parts.append(img[:, 0] if channels == 1 else img.transpose(0, 2, 3, 1))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------- primitives


def _cover(dist: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a shape with signed distance `dist` (negative inside)."""
    out = dist / px
    np.subtract(0.5, out, out=out)
    np.minimum(out, 1.0, out=out)
    return np.maximum(out, 0.0, out=out)


def _ellipse_sdf(u, v, cx, cy, ax, ay):
    """Approximate signed distance to an axis-aligned ellipse (exact for circles)."""
    du = (u - cx) / ax
    dv = (v - cy) / ay
    return (np.sqrt(du * du + dv * dv) - 1.0) * np.minimum(ax, ay)


def _capsule_sdf(u, v, ax, ay, bx, by, radius):
    """Signed distance to a thick segment from (ax, ay) to (bx, by)."""
    pax, pay = u - ax, v - ay
    bax, bay = bx - ax, by - ay
    h = np.clip((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-9), 0.0, 1.0)
    dx, dy = pax - bax * h, pay - bay * h
    return np.sqrt(dx * dx + dy * dy) - radius


def _hline_sdf(u, v, x0, x1, y, radius):
    """Signed distance to a thick horizontal segment from (x0, y) to (x1, y); cheaper than a capsule."""
    dx = np.abs(u - 0.5 * (x0 + x1))
    dx -= 0.5 * (x1 - x0)
    np.maximum(dx, 0.0, out=dx)
    dy = v - y
    return np.sqrt(dx * dx + dy * dy) - radius


def _paint_gated(img: np.ndarray, gate: np.ndarray, color: np.ndarray, alpha_fn) -> None:
    """Paint only the faces whose `gate` (B, 1, 1) is on, with alpha `alpha_fn(selection)`.

    AU-driven details (wrinkles, dimples, teeth, occluders) are absent on most faces, so
    drawing them on the subset that has them saves most of their cost.
    """
    idx = np.flatnonzero(gate.reshape(len(gate), -1)[:, 0] > 0.01)
    if len(idx) == 0:
        return
    if len(idx) == len(img):
        _paint(img, alpha_fn(slice(None)), color)
        return
    sub = img[idx]
    _paint(sub, alpha_fn(idx), color[idx])
    img[idx] = sub


def _paint(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend `color` (B, C) into `img` (B, C, H, W) in place with `alpha` (B, H, W)."""
    img += alpha[:, None] * (color[:, :, None, None] - img)


def _col(value: np.ndarray) -> np.ndarray:
    """Per-face scalar (B,) -> (B, 1, 1) for broadcasting against the pixel grid."""
    return value[:, None, None]


# ---------------------------------------------------------------------------- the face


def _render_chunk(p: Params, *, size: int, channels: int) -> np.ndarray:
    """Composite one chunk back to front; returns float32 (B, C, H, W) in [0, 1]."""
    b = len(p["au"])
    colors = {k[4:]: v for k, v in p.items() if k.startswith("rgb_")}
    if channels == 1:
        colors = {k: (v @ _LUMA)[:, None] for k, v in colors.items()}
    au = _au_lookup(p)

    # pixel centres -> face space (inverse pose: shift, rotate, scale)
    axis = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0) * IMAGE_HALF_EXTENT
    gx, gy = axis[None, None, :], axis[None, :, None]
    cos, sin = _col(np.cos(p["pose_rot"])), _col(np.sin(p["pose_rot"]))
    scale = _col(p["pose_scale"])
    dx, dy = gx - _col(p["pose_dx"]), gy - _col(p["pose_dy"])
    u = (cos * dx + sin * dy) / scale  # (B, H, W)
    v = (-sin * dx + cos * dy) / scale
    px = 2.0 * IMAGE_HALF_EXTENT / size / scale  # one pixel in face units, (B, 1, 1)
    abs_u = np.abs(u)  # most features are mirror images: draw both sides at once

    img = np.empty((b, channels, size, size), dtype=np.float32)
    img[:] = colors["bg"][:, :, None, None]
    _paint(img, np.clip(0.5 + 0.4 * v, 0, 1) * _col(p["bg_grad"]), colors["bg2"])

    # head: hair mass behind, face ellipse (jaw drops with AU26), fringe over the forehead
    fw, ft, fb = _col(p["face_w"]), _col(p["face_top"]), _col(p["face_bot"])
    fb = fb + 0.12 * au[26] + 0.04 * au[25]
    hair_on = _col(p["hair_on"])
    _paint(
        img,
        hair_on * _cover(_ellipse_sdf(u, v, 0.0, -0.12, fw + 0.1, ft + 0.1), px),
        colors["hair"],
    )
    face_ry = np.where(v < 0, ft, fb)
    face = _cover(_ellipse_sdf(u, v, 0.0, 0.0, fw, face_ry), px)
    _paint(img, face, colors["skin"])
    _paint(img, hair_on * face * _cover(v - _col(p["hairline"]), px), colors["hair"])

    ex, ey, ew = _col(p["eye_x"]), _col(p["eye_y"]), _col(p["eye_w"])
    brow_y = ey - _col(p["brow_gap"])
    dark = colors["line"]

    # cheeks (AU6): raised, lit cheek apples and a crease under the lower lid
    _paint_gated(
        img,
        au[6],
        colors["cheek"],
        lambda k: (
            0.45
            * au[6][k]
            * _cover(
                _ellipse_sdf(abs_u[k], v[k], ex[k] + 0.03, ey[k] + 0.32, 0.17, 0.11), px[k] * 4
            )
        ),
    )
    crease_a = np.clip(0.8 * au[6] + 0.4 * au[7], 0, 0.9)
    _paint_gated(
        img,
        crease_a,
        dark,
        lambda k: (
            crease_a[k]
            * _cover(
                _capsule_sdf(
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

    # forehead: horizontal lines for raised brows (AU1/AU2), vertical furrows for AU4
    lift = np.clip(0.8 * np.maximum(au[1], au[2]), 0, 1)
    for off in (0.16, 0.27):
        _paint_gated(
            img,
            lift,
            dark,
            lambda k, off=off: (
                lift[k] * _cover(_hline_sdf(u[k], v[k], -0.3, 0.3, brow_y[k] - off, 0.013), px[k])
            ),
        )
    furrow_a = np.clip(0.9 * au[4], 0, 1)
    _paint_gated(
        img,
        furrow_a,
        dark,
        lambda k: (
            furrow_a[k]
            * _cover(
                _hline_sdf(v[k], abs_u[k], brow_y[k] - 0.12, brow_y[k] + 0.04, 0.055, 0.013), px[k]
            )
        ),
    )

    # brows: inner end raised by AU1, outer by AU2; AU4 lowers and pulls them together
    inner_x = 0.1 - 0.05 * au[4]
    inner_y = brow_y - 0.17 * au[1] + 0.12 * au[4]
    outer_x = ex + ew * 1.15
    outer_y = brow_y - 0.15 * au[2] + 0.03 * au[4]
    mid_x = ex
    mid_y = 0.5 * (inner_y + outer_y) - 0.03 - 0.05 * au[2]
    thick = _col(p["brow_thick"])
    brow = np.minimum(
        _capsule_sdf(abs_u, v, inner_x, inner_y, mid_x, mid_y, thick),
        _capsule_sdf(abs_u, v, mid_x, mid_y, outer_x, outer_y, thick * 0.8),
    )
    _paint(img, _cover(brow, px), colors["brow"])

    # eyes: lid outline, sclera, iris; opening widened by AU5, narrowed by AU7 and AU6
    eh = ew * 0.42 * (1.0 + 1.1 * au[5] - 0.55 * au[7] - 0.4 * au[6])
    eh = np.maximum(eh, 0.012)
    _paint(img, 0.85 * _cover(_ellipse_sdf(abs_u, v, ex, ey, ew + 0.02, eh + 0.022), px), dark)
    sclera = _cover(_ellipse_sdf(abs_u, v, ex, ey, ew, eh), px)
    _paint(img, sclera, colors["sclera"])
    iris_r = _col(p["iris_r"])
    iris = _cover(_ellipse_sdf(abs_u, v, ex, ey, iris_r, iris_r), px)
    _paint(img, sclera * iris, colors["iris"])

    # nose (AU9 wrinkles the bridge, flares and lifts the nostrils; AU10 lifts them a bit)
    ny = _col(p["nose_y"]) - 0.05 * au[9] - 0.02 * au[10]
    wrinkle_a = np.clip(0.9 * au[9], 0, 1)
    for off in (0.06, 0.12):
        _paint_gated(
            img,
            wrinkle_a,
            dark,
            lambda k, off=off: (
                wrinkle_a[k]
                * _cover(_hline_sdf(u[k], v[k], -0.07, 0.07, ey[k] + off, 0.012), px[k])
            ),
        )
    nostril = _ellipse_sdf(abs_u, v, 0.07 + 0.025 * au[9], ny, 0.04 + 0.01 * au[9], 0.022)
    _paint(img, 0.7 * _cover(nostril, px), dark)

    # mouth geometry, both halves (AU14 acts on one side only)
    my = _col(p["mouth_y"])
    mw = _col(p["mouth_w"])
    side = _col(p["au14_side"])
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
    lip_t = _col(p["lip_t"]) * (1.0 - 0.6 * tight)
    h_cover = _cover((np.abs(t) - 1.0) * hw, px)

    # nasolabial folds deepen with AU10, AU9, AU12 and AU6
    fold_a = np.clip(0.15 + 0.7 * au[10] + 0.4 * au[9] + 0.5 * au[12] + 0.2 * au[6], 0, 0.9)
    fold = _capsule_sdf(abs_u, v, 0.12, ny - 0.02, half_w + 0.07, my + 0.02 - lift_side, 0.012)
    _paint(img, fold_a * _cover(fold, px), dark)

    lips = h_cover * _cover((y_up - lip_t * s) - v, px) * _cover(v - (y_lo + 1.3 * lip_t * s), px)
    _paint(img, lips, colors["lip"])
    opening = h_cover * _cover(y_up - v, px) * _cover(v - y_lo, px)
    _paint(img, opening, colors["mouth"])
    teeth_a = np.clip(au[12] + au[10] + 0.5 * au[25], 0, 0.9)
    _paint_gated(
        img,
        teeth_a,
        colors["teeth"],
        lambda k: (
            teeth_a[k]
            * opening[k]
            * _cover(v[k] - (y_up[k] + np.minimum(0.045, 0.45 * (y_lo[k] - y_up[k]))), px[k])
        ),
    )

    # AU14 dimpler: a crease just outside the pulled corner, on its side only
    corner_x = side * (half_w * (1.0 + 0.12 * au[14]) + 0.035)
    corner_y = my - lift_side - 0.2 * au[14]
    dimple_a = np.clip(1.2 * au[14], 0, 0.9)
    _paint_gated(
        img,
        dimple_a,
        dark,
        lambda k: (
            dimple_a[k]
            * _cover(
                _capsule_sdf(
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
    chin_y = my + 0.2 - 0.03 * au[17]
    _paint_gated(
        img,
        au[17],
        dark,
        lambda k: (
            0.6 * au[17][k] * _cover(_hline_sdf(u[k], v[k], -0.1, 0.1, chin_y[k], 0.012), px[k])
        ),
    )

    _draw_occluders(img, p, u, v, abs_u, px, colors)
    return img  # fmt: skip


def _au_lookup(p: Params) -> dict[int, np.ndarray]:
    """AU id -> per-face intensity (B, 1, 1); the columns of `p['au']` follow `AU_IDS`."""
    return {au_id: _col(p["au"][:, i]) for i, au_id in enumerate(AU_IDS)}


def _draw_occluders(img, p: Params, u, v, abs_u, px, colors) -> None:
    """Glasses (rims, tinted or dark lenses) and a hand with finger gaps over the lower face."""
    ex, ey, ew = _col(p["eye_x"]), _col(p["eye_y"]), _col(p["eye_w"])
    glasses = _col((p["occluder"] == 1).astype(np.float32))
    shade = _col(p["lens_shade"])

    def lens(k):
        return _ellipse_sdf(abs_u[k], v[k], ex[k], ey[k], ew[k] + 0.09, 0.15)

    _paint_gated(img, glasses, colors["frame"], lambda k: shade[k] * _cover(lens(k), px[k]))
    _paint_gated(
        img,
        glasses,
        colors["frame"],
        lambda k: _cover(
            np.minimum(
                np.abs(lens(k)) - 0.018, _hline_sdf(u[k], v[k], -0.12, 0.12, ey[k] - 0.04, 0.018)
            ),
            px[k],
        ),
    )

    hand = _col((p["occluder"] == 2).astype(np.float32))
    hx, hy, hr = _col(p["hand_x"]), _col(p["hand_y"]), _col(p["hand_r"])
    _paint_gated(
        img,
        hand,
        colors["hand"],
        lambda k: _cover(_ellipse_sdf(u[k], v[k], hx[k], hy[k], hr[k], hr[k] * 0.8), px[k]),
    )
    for j in (-1, 0, 1):  # finger gaps: dark strokes across the palm
        _paint_gated(img, hand, colors["line"], lambda k, j=j: 0.5 * _cover(_hline_sdf(
            u[k], v[k], hx[k] - hr[k] * 0.8, hx[k] + hr[k] * 0.1, hy[k] + j * hr[k] * 0.4, 0.01), px[k]))  # fmt: skip


def _blur_and_noise(img: np.ndarray, p: Params, *, rng: np.random.Generator) -> np.ndarray:
    """Per-face blur (a [1, 2, 1] kernel mixed in with weight `blur`) then Gaussian noise."""
    amount = p["blur"][:, None, None, None]
    for _ in range(2):
        pad = np.pad(img, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        smooth = (pad[:, :, :-2] + 2 * pad[:, :, 1:-1] + pad[:, :, 2:]) * 0.25
        smooth = (smooth[..., :-2] + 2 * smooth[..., 1:-1] + smooth[..., 2:]) * 0.25
        img = img + amount * (smooth - img)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    return img + noise * p["pixel_noise"][:, None, None, None]
