"""Prior knowledge shared by the methods and the synthetic faces: AU prototypes and VA centroids.

AU prototypes follow EMFACS/FACS (Du et al. 2014 variants) as tabulated in
docs/methods.md: weight 1 for a core AU, 0.5 for a variant. VA centroids are
Russell (1980) for the first six classes and NRC-VAD ratings for disgust and contempt.
"""

from __future__ import annotations

from collections.abc import Sequence

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
