"""MTAC's readout: score columns from `MTAC.predict`'s arrays and the training history, in numpy.

Scoring, not training, so it sits apart from the network: no torch module, no gradients,
and its choices (what goes into `label_quality_signal`) were measured on their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from fercleaner.methods.mtac_memory import TrainingHistory
from fercleaner.methods.relabel import center_similarities
from fercleaner.priors import get_va_centroids

if TYPE_CHECKING:
    from fercleaner.methods.mtac import MTACOptions


def get_mtac_readout(
    outputs: dict[str, np.ndarray],
    given_labels: np.ndarray,
    *,
    history: TrainingHistory,
    classes: tuple[str, ...],
    options: MTACOptions,
) -> dict[str, np.ndarray]:
    """Score arrays; label_quality_signal = blend of the classifier's and the prototypes' p_given.

    label_quality_signal = (1 - w) * probs[given] + w * softmax(sims / T)[given] with
    w = `quality_prototype_weight`, default 0: the blend w = 0.5 helped a little on
    synthetic faces (AP 0.558 vs 0.546 classifier only) but hurt on FERPlus real
    annotator noise (0.388 vs 0.453), where the prototypes alone reach only 0.28.
    The confidence a_i is not in it: it ranked errors near chance (synthetic AP 0.23,
    chance 0.20; FERPlus 0.18, chance 0.14) and multiplying by its percentile cost
    0.24 AP; it is reported as columns and as `uncertainty` = 1 - a.

    Args:
        outputs: `MTAC.predict`'s arrays over the N scored rows: `probs` (N, C),
            `confidence` (N,), `prototype_similarity` (N, C), `va` (N, 2), `au` (N, K).
        given_labels: (N,) class index of each row's given label.
        history: the rows' training history (`SampleMemory.get_history`).

    Returns:
        The readout contract's arrays plus columns `confidence` (predict-time a),
        `confidence_train` (a averaged over the last `confidence_epochs` training epochs;
        NaN for rows the model did not train on), `relabeled_at` (epoch of the last
        relabel or -1), `relabel_to` (class index or -1), `prototype_margin` (centred
        cosine similarity to the given label's prototype minus the best other; low =
        features disagree with the label), `va_disagreement` (distance of the predicted
        VA from the given label's centroid over the largest possible distance, in
        [0, 1]), `valence`, `arousal`, `au_probs` (N, K) predicted AU activations in
        `priors.AU_IDS` order.
    """
    given_labels = np.asarray(given_labels, dtype=np.int64)
    n = len(given_labels)
    rows = np.arange(n)
    probs = outputs["probs"].astype(np.float64)
    confidence = outputs["confidence"].astype(np.float64)
    raw_sims = outputs["prototype_similarity"].astype(np.float64)
    missing = np.all(raw_sims == -1.0, axis=0)  # classes without a prototype (predict fills -1)
    sims = center_similarities(
        torch.from_numpy(raw_sims),
        torch.from_numpy(given_labels),
        rows=torch.ones(n, dtype=torch.bool),
    ).numpy()  # (N, C) on each class's own scale, see `center_similarities`
    sims[:, missing] = -2.0
    va = outputs["va"].astype(np.float64)
    own_sim = sims[rows, given_labels]
    others = sims.copy()
    others[rows, given_labels] = -np.inf
    prototype_margin = own_sim - others.max(axis=1)
    centroids = get_va_centroids(classes).astype(np.float64)
    va_disagreement = np.linalg.norm(va - centroids[given_labels], axis=1) / (2 * np.sqrt(2))
    confidence_train = history.confidence_train
    combined_conf = np.where(
        np.isnan(confidence_train), confidence, 0.5 * (confidence + confidence_train)
    )
    proto = np.exp((sims - sims.max(axis=1, keepdims=True)) / options.prototype_temperature)
    proto /= proto.sum(axis=1, keepdims=True)
    w = options.quality_prototype_weight
    quality = (1.0 - w) * probs[rows, given_labels] + w * proto[rows, given_labels]
    soft = probs if options.soft_label == "probs" else 0.5 * (probs + proto)
    return {
        "pred_probs": probs.astype(np.float32),
        "soft_label": soft.astype(np.float32),
        "uncertainty": (1.0 - combined_conf).astype(np.float32),
        "label_quality_signal": np.clip(quality, 0.0, 1.0).astype(np.float32),
        "confidence": confidence.astype(np.float32),
        "confidence_train": confidence_train.astype(np.float32),
        "relabeled_at": history.relabeled_at,
        "relabel_to": history.relabel_to,
        "prototype_margin": prototype_margin.astype(np.float32),
        "va_disagreement": va_disagreement.astype(np.float32),
        "valence": va[:, 0].astype(np.float32),
        "arousal": va[:, 1].astype(np.float32),
        "au_probs": outputs["au"].astype(np.float32),  # (N, K) in priors.AU_IDS order
    }
