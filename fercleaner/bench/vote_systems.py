"""The `votes` protocol's four systems as functions of the truth and one model's probabilities.

Pure pandas and numpy (cleanlab for `cleanlab_multiannotator`): no child process, no file.
`fercleaner.bench.votes` runs the scorer, caches its run and calls these (issue 10).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.arrays import get_normalized_entropy, to_matrix
from fercleaner.bench.metrics import get_issue_type_metrics
from fercleaner.bench.systems import SystemScores, align_columns
from fercleaner.errors import FercleanerError

PLURALITY = "plurality"
MULTIANNOTATOR = "cleanlab_multiannotator"
WITHOUT_VOTES = "fercleaner_novotes"
WITH_VOTES = "fercleaner_votes"
#: The systems of a votes benchmark, in report order.
VOTE_SYSTEMS = (PLURALITY, MULTIANNOTATOR, WITHOUT_VOTES, WITH_VOTES)


def get_plurality_system(truth: pd.DataFrame, classes: Sequence[str]) -> SystemScores:
    """The visible votes alone: consensus = the given label (their plurality), quality = its
    share of the visible votes."""
    shown = to_matrix(truth["visible_votes"])
    share = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1e-12)
    index = {name: i for i, name in enumerate(classes)}
    given = truth["given_label"].astype(str).map(index).to_numpy(dtype=np.int64)
    return SystemScores(
        name=PLURALITY,
        sample_ids=truth["sample_id"].astype(str).to_numpy(),
        label_quality=share[np.arange(len(given)), given],
        is_label_issue=np.zeros(len(given), dtype=bool),
        proposed_label=truth["given_label"].astype(str).to_numpy(dtype=object),
        soft_label=share,
        uncertainty=get_normalized_entropy(share),
    )


def get_multiannotator_system(
    truth: pd.DataFrame,
    order: np.ndarray,
    given: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
) -> SystemScores:
    """cleanlab's CROWDLAB on (N, k) annotator columns `order` and (N, C) `probs`.

    Consensus = cleanlab's `consensus_label` (flagged where it leaves the given label);
    quality of the given label = CROWDLAB's posterior at it. Soft label = the model's
    probabilities (cleanlab returns no posterior). k = 1: `get_label_quality_scores`.
    """
    try:
        from cleanlab.multiannotator import get_label_quality_multiannotator
        from cleanlab.rank import get_label_quality_scores
    except ImportError:
        raise FercleanerError(
            "the votes protocol needs cleanlab >= 2.9: pip install 'fercleaner[bench]'"
        ) from None
    rows = np.arange(len(given))
    if order.shape[1] == 1:
        consensus = given
        quality = get_label_quality_scores(given, probs)
    else:
        result = get_label_quality_multiannotator(
            order.astype(np.float64),
            probs,
            verbose=False,
            return_annotator_stats=False,
        )
        consensus = result["label_quality"]["consensus_label"].to_numpy(dtype=np.int64)
        detailed = result["detailed_label_quality"].to_numpy(dtype=np.float64)
        # the given label is one of the visible votes: the first annotator who gave it
        quality = detailed[rows, (order == given[:, None]).argmax(axis=1)]
    names = np.array(classes, dtype=object)
    return SystemScores(
        name=MULTIANNOTATOR,
        sample_ids=truth["sample_id"].astype(str).to_numpy(),
        label_quality=np.asarray(quality, dtype=np.float64),
        is_label_issue=consensus != given,
        proposed_label=names[consensus],
        soft_label=probs,
        uncertainty=get_normalized_entropy(probs),
    )


def get_run_issue_types(
    frame: pd.DataFrame, truth: pd.DataFrame, classes: Sequence[str]
) -> dict[str, Any]:
    """`get_issue_type_metrics` of a scores frame against all the votes (joined on sample_id;
    images the run did not score are left out, as `evaluate_system` leaves them)."""
    index = {name: i for i, name in enumerate(classes)}
    flags = frame[["sample_id", "is_label_issue", "issue_type"]].astype({"sample_id": str})
    joined = truth[["sample_id", "given_label", "votes"]].merge(flags, on="sample_id")
    return get_issue_type_metrics(
        to_matrix(joined["votes"]),
        joined["given_label"].astype(str).map(index).to_numpy(dtype=np.int64),
        joined["is_label_issue"].to_numpy(dtype=bool),
        joined["issue_type"].astype(str).to_numpy(dtype=object),
    )


def align_rows(frame: pd.DataFrame, truth: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of system `name`'s scores frame in truth order (every truth sample scored)."""
    indexed = frame.set_index(frame["sample_id"].astype(str), drop=False)
    ids = truth["sample_id"].astype(str)
    return select_rows(
        indexed,
        ids,
        lambda missing: (
            f"{name} scored {len(ids) - len(missing)} of the benchmark's {len(ids)} images "
            f"(first missing: {missing.iloc[0]!r}); see its log under runs/"
        ),
    )


def select_rows(
    indexed: pd.DataFrame, ids: pd.Series, describe_missing: Callable[[pd.Series], str]
) -> pd.DataFrame:
    """The rows of `indexed` (indexed by sample id) for `ids`, in their order.

    Raises:
        FercleanerError: some ids are not in `indexed`; the message is
            `describe_missing(those ids)`, which says whose fault it is.
    """
    missing = ids[~ids.isin(indexed.index)]
    if len(missing):
        raise FercleanerError(describe_missing(missing))
    return indexed.loc[ids].reset_index(drop=True)


def align_frame_columns(
    frame: pd.DataFrame, from_classes: Sequence[str], to_classes: Sequence[str]
) -> pd.DataFrame:
    """The frame with `pred_probs` and `soft_label` re-indexed to `to_classes` (`align_columns`)."""
    if list(from_classes) == list(to_classes):
        return frame
    frame = frame.copy()
    for column in ("pred_probs", "soft_label"):
        frame[column] = list(align_columns(to_matrix(frame[column]), from_classes, to_classes))
    return frame
