"""`score_labels`: scoring on a user's own probabilities, with cleanlab's argument conventions.

Someone who already has out-of-sample probabilities from their own model (cross-validated,
or a held-out model) should not need fercleaner's trainer to get its flags, issue types
and proposals: `score_labels(labels, pred_probs)` takes exactly what
`cleanlab.filter.find_label_issues(labels, pred_probs)` takes and returns the scores
contract (docs/architecture.md) as a DataFrame, one row per sample in input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fercleaner.arrays import get_probability_readout
from fercleaner.scoring._validation import check_labels_probs
from fercleaner.scoring.assemble import assemble_scores

#: Name of the scoring source when probabilities come from outside fercleaner.
PREDICTIONS_SOURCE = "predictions"
#: Neighbours averaged by the embedding outlier score.
OUTLIER_NEIGHBOURS = 10
#: Largest tolerated |row sum - 1| of `pred_probs`.
ROW_SUM_TOLERANCE = 1e-3


def score_labels(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
    embeddings: np.ndarray | None = None,
    flag_rule: str = "noise_rate",
) -> pd.DataFrame:
    """Flag, type and propose labels from given labels and out-of-sample probabilities.

    Args:
        labels: (N,) int class index of each sample's given label, in [0, K).
        pred_probs: (N, K) probabilities from a model that did not train on the sample
            (rows sum to 1), columns in the order of `class_names`.
        class_names: K names (default "0".."K-1").
        sample_ids: N ids for the `sample_id` column (default "0".."N-1").
        embeddings: optional (N, D) features; adds `outlier_score` in [0, 1], the rank of
            each sample's mean distance to its nearest neighbours (1 = farthest from the rest).
        flag_rule: `is_label_issue` rule, see `fercleaner.scoring.flags`.

    Returns:
        One row per sample: sample_id, given_label, predicted_label, proposed_label,
        label_quality (low = suspect), is_label_issue, issue_type, uncertainty,
        pred_probs, soft_label (+ outlier_score).

    Raises:
        ValueError: inconsistent shapes, labels out of range, rows that are not
            probability vectors, names or ids of the wrong length.
    """
    labels, probs = check_labels_probs(labels, pred_probs)
    n, k = probs.shape
    sums = probs.sum(axis=1)
    if n and np.abs(sums - 1).max() > ROW_SUM_TOLERANCE:
        row = int(np.abs(sums - 1).argmax())
        raise ValueError(
            f"pred_probs row {row} sums to {sums[row]:.4g}, not 1: pass probabilities "
            "(apply a softmax to logits)"
        )
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    ids = [str(s) for s in sample_ids] if sample_ids is not None else [str(i) for i in range(n)]
    if len(names) != k or len(set(names)) != k:
        raise ValueError(f"class_names must be {k} distinct names; got {names}")
    if len(ids) != n:
        raise ValueError(f"sample_ids must have {n} entries; got {len(ids)}")
    probs = probs / sums[:, None]
    readout = get_probability_readout(probs, labels)
    samples = pd.DataFrame(
        {
            "sample_id": ids,
            "split": "train",
            "given_label": np.array(names, dtype=object)[labels],
            "path": "",
        }
    )
    frame = assemble_scores(
        samples,
        names,
        {PREDICTIONS_SOURCE: readout},
        method_name=PREDICTIONS_SOURCE,
        flag_rule=flag_rule,
    )
    # the contract columns only (assemble adds `predictions_<signal>` copies)
    copies = [c for c in frame.columns if c.startswith(f"{PREDICTIONS_SOURCE}_")]
    frame = frame.drop(columns=["path", "split", *copies])
    if embeddings is not None:
        if len(embeddings) != n:
            raise ValueError(f"embeddings must have {n} rows, one per label; got {len(embeddings)}")
        frame["outlier_score"] = get_outlier_score(embeddings)
    return frame


def get_outlier_score(
    embeddings: np.ndarray, *, neighbours: int = OUTLIER_NEIGHBOURS
) -> np.ndarray:
    """(N,) rank in [0, 1] of each row's mean distance to its neighbours (1 = most isolated)."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"embeddings must be a finite (N, D) array; got shape {x.shape}")
    n = len(x)
    if n < 2:
        return np.zeros(n)
    k = min(neighbours, n - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    mean = distances[:, 1:].mean(axis=1)  # column 0 is the row itself
    order = mean.argsort(kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n) / (n - 1)
    return rank
