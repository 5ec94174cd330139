"""FER priors for the methods and the synthetic faces: AU prototypes, VA centroids, face regions.

AU prototypes follow EMFACS/FACS (Du et al. 2014 variants) as tabulated in
docs/methods.md: weight 1 for a core AU, 0.5 for a variant. VA centroids are
Russell (1980) for the first six classes and NRC-VAD ratings for disgust and contempt.
Face regions are fixed boxes of an aligned face crop, as the methods' patch branches use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The action units the prototypes use, in column order of every AU array.
AU_IDS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26)

#: class -> {AU id: weight}
AU_PROTOTYPES: dict[str, dict[int, float]] = {
    "neutral": {},
    "happiness": {6: 1.0, 12: 1.0, 25: 0.5},
    "surprise": {1: 1.0, 2: 1.0, 26: 1.0, 5: 0.5, 25: 0.5},
    "sadness": {1: 1.0, 4: 1.0, 15: 1.0, 17: 0.5, 6: 0.25},
    "anger": {4: 1.0, 7: 1.0, 5: 0.5, 23: 0.5, 24: 0.5, 17: 0.5},
    "disgust": {9: 1.0, 10: 1.0, 15: 0.5, 16: 0.5, 17: 0.5, 4: 0.25},
    "fear": {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0, 20: 1.0, 7: 0.5, 25: 0.5, 26: 0.5},
    "contempt": {14: 1.0, 12: 0.5},
}

#: class -> (valence, arousal) in [-1, 1].
VA_CENTROIDS: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happiness": (0.83, 0.53),
    "surprise": (0.16, 0.89),
    "sadness": (-0.65, -0.27),
    "anger": (-0.52, 0.58),
    "fear": (-0.34, 0.64),
    "disgust": (-0.90, 0.55),
    "contempt": (-0.59, 0.27),
}


@dataclass(frozen=True)
class FaceRegion:
    """A fixed box of a roughly aligned face crop, and the AUs that show in it."""

    box: tuple[float, float, float, float]
    """(x0, y0, x1, y1) as fractions of width and height; 0 = the left/top edge."""
    aus: tuple[int, ...] = ()
    """AU ids (from `AU_IDS`) visible in the box, listed where a method reads AUs from it."""


#: Named regions of an aligned face. FER crops (FER2013, FERPlus, RAF-DB aligned,
#: AffectNet) put the eyes about 35-45% and the mouth about 70-85% down the face.
#: "left"/"right" mean image left/right (the subject's right/left). UAPL's patches use
#: the parts and the 2x2 grid; POI's prior network uses the four bands with their AUs.
FACE_REGIONS: dict[str, FaceRegion] = {
    # parts
    "left_eye": FaceRegion((0.05, 0.15, 0.50, 0.50)),  # brow + eye
    "right_eye": FaceRegion((0.50, 0.15, 0.95, 0.50)),
    "nose": FaceRegion((0.30, 0.35, 0.70, 0.70)),
    "mouth": FaceRegion((0.20, 0.60, 0.80, 0.95)),
    "left_cheek": FaceRegion((0.00, 0.45, 0.40, 0.85)),
    "right_cheek": FaceRegion((0.60, 0.45, 1.00, 0.85)),
    # a coarse 2x2 grid so nothing outside the named parts is lost (forehead, jaw, hair)
    "grid_top_left": FaceRegion((0.00, 0.00, 0.50, 0.50)),
    "grid_top_right": FaceRegion((0.50, 0.00, 1.00, 0.50)),
    "grid_bottom_left": FaceRegion((0.00, 0.50, 0.50, 1.00)),
    "grid_bottom_right": FaceRegion((0.50, 0.50, 1.00, 1.00)),
    # bands, wide enough to overlap on a 6x6 feature map
    "upper_face": FaceRegion((0.0, 0.0, 1.0, 0.55), aus=(1, 2, 4, 5, 6, 7)),
    "mid_face": FaceRegion((0.25, 0.3, 0.75, 0.75), aus=(4, 6, 9, 10)),
    "lower_face": FaceRegion(
        (0.1, 0.55, 0.9, 1.0), aus=(10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26)
    ),
    "whole_face": FaceRegion((0.0, 0.0, 1.0, 1.0), aus=AU_IDS),
}


def au_column(au_id: int) -> str:
    """Sample-table column name for an AU intensity, e.g. 12 -> 'au_12'."""
    return f"au_{au_id}"


def get_au_prior_matrix(classes: Sequence[str]) -> np.ndarray:
    """Prior matrix M of shape (C, K): M[c, k] = weight of AU_IDS[k] in class c's prototype."""
    matrix = np.zeros((len(classes), len(AU_IDS)), dtype=np.float32)
    for row, name in enumerate(classes):
        for au_id, weight in AU_PROTOTYPES[name].items():
            matrix[row, AU_IDS.index(au_id)] = weight
    return matrix


def get_va_centroids(classes: Sequence[str]) -> np.ndarray:
    """VA centroids of shape (C, 2) in class order."""
    return np.asarray([VA_CENTROIDS[name] for name in classes], dtype=np.float32)
