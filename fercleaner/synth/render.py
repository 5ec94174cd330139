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

This module owns the chunk loop, the order the parts are painted in, and blur and pixel
noise. The parts live beside it: `face_space` (pixels to face space), `raster` (shapes and
painting), `parts` (head to nose), `mouth` and `occluders`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fercleaner._pool import run_jobs
from fercleaner.synth import parts
from fercleaner.synth.face_space import IMAGE_HALF_EXTENT, Params, to_face_space
from fercleaner.synth.mouth import draw_mouth
from fercleaner.synth.occluders import draw_occluders

__all__ = ["IMAGE_HALF_EXTENT", "Params", "render_faces"]

#: Faces rendered per inner batch: (B, H, W) temporaries stay in CPU cache (32 measured fastest).
_CHUNK = 32
#: Faces per parallel work item (a multiple of _CHUNK, so chunk k always holds the same faces).
_SPAN = 32 * _CHUNK


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
    pieces = []
    for first in range(start, stop, _CHUNK):
        last = min(first + _CHUNK, stop)
        chunk = {key: value[first - offset : last - offset] for key, value in params.items()}
        img = _render_chunk(chunk, size=size, channels=channels)  # (B, C, H, W) in [0, 1]
        rng = np.random.default_rng([noise_seed, first // _CHUNK])
        img = _blur_and_noise(img, chunk, rng=rng)
        img = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        pieces.append(img[:, 0] if channels == 1 else img.transpose(0, 2, 3, 1))
    return np.concatenate(pieces)


def _render_chunk(p: Params, *, size: int, channels: int) -> np.ndarray:
    """Composite one chunk back to front; returns float32 (B, C, H, W) in [0, 1]."""
    f = to_face_space(p, size=size, channels=channels)
    img = parts.new_canvas(f)
    parts.draw_head(img, f)
    parts.draw_cheeks(img, f)
    parts.draw_forehead(img, f)
    parts.draw_brows(img, f)
    parts.draw_eyes(img, f)
    parts.draw_nose(img, f)
    draw_mouth(img, f)
    draw_occluders(img, f)
    return img


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
