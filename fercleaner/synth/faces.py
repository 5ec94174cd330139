"""Procedural AU-driven faces with known ground truth: `generate_faces(n, seed=...)`.

Each face gets a class, its AU prototype (`fercleaner.priors`) scaled by an intensity
jitter, optionally mixed with a second class (ambiguity, giving a soft label), an
identity (face shape, feature spacing, skin tone, hair), pose jitter, an optional
occluder, blur and noise. Randomness comes from independent streams of one seed, so
e.g. changing the noise rate leaves the pixels unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.errors import ConfigError
from fercleaner.priors import AU_IDS, au_column, get_au_prior_matrix, get_va_centroids
from fercleaner.synth.labels import get_soft_labels, inject_label_noise
from fercleaner.synth.render import render_faces

OCCLUDERS: tuple[str, ...] = ("none", "glasses", "hand")

# independent random streams spawned from one seed
_STREAM_LABELS, _STREAM_AUS, _STREAM_IDENTITY, _STREAM_OCCLUDER, _STREAM_NOISE, _STREAM_PIXELS = (
    range(6)
)


def generate_faces(
    n: int,
    *,
    seed: int,
    size: int = 48,
    classes: Sequence[str] | None = None,
    channels: int = 1,
    occlusion_rate: float = 0.0,
    ambiguity_rate: float = 0.0,
    noise_rate: float = 0.0,
    noise_kind: str = "symmetric",
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Draw `n` synthetic faces and their ground truth.

    Args:
        n: number of faces; classes are balanced (counts differ by at most one).
        seed: the same seed and options give identical images and truth.
        size: image side in pixels.
        classes: canonical class names (default: all 8), kept in canonical order.
        channels: 1 for grey, 3 for RGB.
        occlusion_rate: fraction of faces with glasses or a hand over the face.
        ambiguity_rate: fraction of faces mixing a second class prototype with weight
            in [0.2, 0.45]; their `soft_label` carries both classes.
        noise_rate: fraction of `given_label`s changed to a wrong class (exact count).
        noise_kind: `symmetric` or `pairflip` (see `fercleaner.synth.labels`).
        workers: drawing processes for large `n` (output is identical for any value).
        progress: called as `progress(done, n)` while drawing.

    Returns:
        images: uint8 (N, size, size) for grey, (N, size, size, 3) for RGB.
        truth: one row per face: `clean_label`, `given_label`, `is_noisy`, `soft_label`
            (list of float32 over `classes`, sums to 1), `ambiguous`, `au_<id>` in
            [0, 1], `valence`, `arousal` in [-1, 1], `occluded`, `occluder`.
    """
    classes = _check_options(
        n=n,
        size=size,
        classes=classes,
        channels=channels,
        occlusion_rate=occlusion_rate,
        ambiguity_rate=ambiguity_rate,
    )
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    n_classes = len(classes)

    rng = streams[_STREAM_LABELS]
    clean = rng.permutation(np.arange(n) % n_classes)
    ambiguous = rng.random(n) < ambiguity_rate
    partner = (clean + rng.integers(1, max(n_classes, 2), size=n)) % n_classes
    weight = np.where(ambiguous & (n_classes > 1), rng.uniform(0.2, 0.45, size=n), 0.0)
    soft = get_soft_labels(clean, partner, weight.astype(np.float32), n_classes=n_classes)

    # AUs and VA share one stream: VA scales with the same expression intensity
    au_rng = streams[_STREAM_AUS]
    au, intensity = _sample_aus(soft, classes, rng=au_rng)
    va = intensity[:, None] * (soft @ get_va_centroids(classes))
    va = np.clip(va + au_rng.normal(0.0, 0.07, size=va.shape), -1.0, 1.0).astype(np.float32)

    params = _sample_identity(n, rng=streams[_STREAM_IDENTITY])
    params.update(_sample_occluders(n, rate=occlusion_rate, rng=streams[_STREAM_OCCLUDER]))
    params["au"] = au
    pixel_seed = int(streams[_STREAM_PIXELS].integers(2**31))
    images = render_faces(
        params,
        size=size,
        channels=channels,
        noise_seed=pixel_seed,
        workers=workers,
        progress=progress,
    )

    given = inject_label_noise(
        clean, rate=noise_rate, kind=noise_kind, classes=classes, rng=streams[_STREAM_NOISE]
    )
    names = np.asarray(classes, dtype=object)
    truth = pd.DataFrame(
        {
            "clean_label": names[clean],
            "given_label": names[given],
            "is_noisy": given != clean,
            "soft_label": list(soft),
            "ambiguous": weight > 0,
            **{au_column(a): au[:, k] for k, a in enumerate(AU_IDS)},
            "valence": va[:, 0],
            "arousal": va[:, 1],
            "occluded": params["occluder"] > 0,
            "occluder": np.asarray(OCCLUDERS, dtype=object)[params["occluder"]],
        }
    )
    for col in ("clean_label", "given_label", "occluder"):
        truth[col] = truth[col].astype("string")
    return images, truth


def render_aus(au: np.ndarray, *, seed: int, size: int = 48, channels: int = 1) -> np.ndarray:
    """Draw the AU intensities `au` (N, len(AU_IDS)) in [0, 1] on one identity, frontal and clean.

    Every row gets the same face (drawn from `seed`) with no pose jitter, occluder, blur
    or noise, so the images differ only where the AUs move the geometry: the way to see
    (and test) what each AU and each class prototype does.
    """
    au = np.asarray(au, dtype=np.float32)
    if au.ndim != 2 or au.shape[1] != len(AU_IDS):
        raise ConfigError(f"au has shape {au.shape}; expected (N, {len(AU_IDS)}) in AU_IDS order")
    one = _sample_identity(1, rng=np.random.default_rng(seed))
    one.update(_sample_occluders(1, rate=0.0, rng=np.random.default_rng(seed)))
    params = {key: np.repeat(value, len(au), axis=0) for key, value in one.items()}
    for key in ("pose_rot", "pose_dx", "pose_dy", "blur", "pixel_noise"):
        params[key][:] = 0.0
    params["pose_scale"][:] = 1.0
    params["au"] = np.clip(au, 0.0, 1.0)
    return render_faces(params, size=size, channels=channels, noise_seed=seed)


def _check_options(
    *,
    n: int,
    size: int,
    classes: Sequence[str] | None,
    channels: int,
    occlusion_rate: float,
    ambiguity_rate: float,
) -> list[str]:
    """Validate generation options once, at the public boundary; return the class list."""
    problems = []
    if n < 1:
        problems.append(f"n={n}: need at least one face")
    if not 16 <= size <= 1024:
        problems.append(f"size={size}: use a side between 16 and 1024 pixels (48 for FER)")
    if channels not in (1, 3):
        problems.append(f"channels={channels}: use 1 (grey) or 3 (RGB)")
    for name, rate in (("occlusion_rate", occlusion_rate), ("ambiguity_rate", ambiguity_rate)):
        if not 0.0 <= rate <= 1.0:
            problems.append(f"{name}={rate}: must be a fraction in [0, 1]")
    chosen = list(CANONICAL_CLASSES) if classes is None else list(classes)
    unknown = [c for c in chosen if c not in CANONICAL_CLASSES]
    if unknown:
        problems.append(
            f"classes {unknown}: expected canonical names from {list(CANONICAL_CLASSES)}"
        )
    if len(set(chosen)) < 1 or len(set(chosen)) != len(chosen):
        problems.append(f"classes {chosen}: give each class once, at least one")
    if problems:
        raise ConfigError("invalid synthetic-face options: " + "; ".join(problems))
    return [c for c in CANONICAL_CLASSES if c in chosen]


def _sample_aus(
    soft: np.ndarray, classes: list[str], *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """AU intensities (N, K) float32 in [0, 1] and the per-face expression intensity (N,).

    Prototype mixed by the soft label, scaled by an intensity in [0.55, 1] and a per-AU
    jitter, plus a few weak spurious activations (real faces are never clean prototypes).
    """
    n, k = len(soft), len(AU_IDS)
    intensity = rng.uniform(0.55, 1.0, size=n).astype(np.float32)
    jitter = rng.uniform(0.8, 1.15, size=(n, k)).astype(np.float32)
    spurious = (rng.random((n, k)) < 0.08) * rng.uniform(0.0, 0.3, size=(n, k))
    au = (soft @ get_au_prior_matrix(classes)) * intensity[:, None] * jitter + spurious
    return np.clip(au, 0.0, 1.0).astype(np.float32), intensity


def _sample_identity(n: int, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Face shape, feature spacing, colours and pose for `n` faces (see `render`)."""

    def uni(lo: float, hi: float, shape: int | tuple[int, ...] = n) -> np.ndarray:
        return rng.uniform(lo, hi, size=shape).astype(np.float32)

    tone = uni(0.0, 1.0)[:, None]
    skin = (1 - tone) * [0.96, 0.8, 0.68] + tone * [0.36, 0.23, 0.16]
    skin = np.clip(skin * uni(0.9, 1.06)[:, None], 0, 1)
    hair_palette = np.array(
        [[0.07, 0.06, 0.05], [0.25, 0.16, 0.09], [0.45, 0.3, 0.15], [0.72, 0.58, 0.34]]
    )
    hair = hair_palette[rng.choice(4, size=n, p=[0.45, 0.3, 0.15, 0.1])] * uni(0.8, 1.2)[:, None]
    p: dict[str, np.ndarray] = {
        "face_w": uni(0.72, 0.88),
        "face_top": uni(0.95, 1.08),
        "face_bot": uni(0.92, 1.05),
        "hair_on": (rng.random(n) < 0.85).astype(np.float32),
        "hairline": uni(-0.78, -0.55),
        "eye_x": uni(0.28, 0.37),
        "eye_y": uni(-0.2, -0.1),
        "eye_w": uni(0.13, 0.17),
        "iris_r": uni(0.055, 0.075),
        "brow_gap": uni(0.17, 0.23),
        "brow_thick": uni(0.03, 0.05),
        "nose_y": uni(0.17, 0.27),
        "mouth_y": uni(0.47, 0.57),
        "mouth_w": uni(0.21, 0.28),
        "lip_t": uni(0.025, 0.045),
        "au14_side": np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32),
        "pose_rot": np.deg2rad(uni(-10.0, 10.0)),
        "pose_scale": uni(0.92, 1.08),
        "pose_dx": uni(-0.06, 0.06),
        "pose_dy": uni(-0.06, 0.06),
        "bg_grad": uni(0.0, 0.6),
        "blur": np.where(rng.random(n) < 0.5, uni(0.0, 0.9), 0.0).astype(np.float32),
        "pixel_noise": uni(0.0, 0.03),
        "rgb_bg": uni(0.05, 0.95, (n, 3)),
        "rgb_bg2": uni(0.05, 0.95, (n, 3)),
        "rgb_skin": skin.astype(np.float32),
        "rgb_hair": np.clip(hair, 0, 1).astype(np.float32),
        "rgb_brow": np.minimum(hair, skin * 0.45).astype(np.float32),
        "rgb_line": (skin * 0.45).astype(np.float32),
        "rgb_cheek": np.clip(skin * 1.15, 0, 1).astype(np.float32),
        "rgb_sclera": np.clip(uni(0.82, 0.95)[:, None] * [1.0, 1.0, 0.97], 0, 1).astype(np.float32),
        "rgb_iris": (uni(0.05, 0.35)[:, None] * uni(0.6, 1.0, (n, 3))).astype(np.float32),
        "rgb_lip": (skin * [0.78, 0.5, 0.5]).astype(np.float32),
        "rgb_mouth": np.tile(np.float32([0.16, 0.05, 0.06]), (n, 1)),
        "rgb_teeth": np.tile(np.float32([0.93, 0.91, 0.86]), (n, 1)),
    }
    return p


def _sample_occluders(n: int, *, rate: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Occluder code per face (0 none, 1 glasses, 2 hand) and the occluder's look."""
    occluded = rng.random(n) < rate
    kind = np.where(occluded, rng.integers(1, 3, size=n), 0)
    hand_tone = rng.uniform(0.3, 0.95, size=(n, 1)) * [1.0, 0.8, 0.68]
    return {
        "occluder": kind.astype(np.int64),
        "lens_shade": np.where(rng.random(n) < 0.5, 0.9, 0.15).astype(np.float32),
        "rgb_frame": np.tile(np.float32([0.06, 0.06, 0.07]), (n, 1)),
        "hand_x": rng.uniform(-0.35, 0.35, size=n).astype(np.float32),
        "hand_y": rng.uniform(0.25, 0.6, size=n).astype(np.float32),
        "hand_r": rng.uniform(0.28, 0.38, size=n).astype(np.float32),
        "rgb_hand": np.clip(hand_tone, 0, 1).astype(np.float32),
    }
