"""What each review action means: where its label comes from, its weight, what export writes.

One table for both sides: the review app turns a click into a `Decision` with
`make_decision`, and export turns the current decision of a sample (or, for samples nobody
reviewed, the policy's model decision) into a manifest row with `get_outcomes` and the
table's weights. The names are the store's `DECISION_ACTIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fercleaner.review.events import Decision

LabelFrom = Literal["proposed", "given", "chosen", "soft", "none"]


@dataclass(frozen=True)
class Action:
    """One review action.

    Attributes:
        name: the action as stored (`Decision.action`).
        label_from: where the decision's label comes from: the model's `proposed_label`,
            the `given_label`, a class the reviewer `chosen`, the most likely class of the
            model's `soft` label (stored with the decision), or `none` (no label is
            recorded; the sample keeps its given label).
        weight: the sample's training weight in the cleaned manifest (0: excluded; the row
            stays in the manifest so the training code decides).
        soft: the sample trains on a soft label over the classes instead of a one-hot one.
        help: the action in a few words.
    """

    name: str
    label_from: LabelFrom
    weight: float
    soft: bool
    help: str

    @property
    def sets_hard_label(self) -> bool:
        """Trains on one class: the manifest says `keep` (the given class) or `relabel`."""
        return self.weight > 0 and not self.soft

    @property
    def records_label(self) -> bool:
        """The decision stores a label (every action but `exclude`)."""
        return self.label_from != "none"


#: Every review action, by name.
ACTION_TABLE: Mapping[str, Action] = {
    a.name: a
    for a in (
        Action("accept", "proposed", 1.0, False, "take the model's proposed label"),
        Action("keep", "given", 1.0, False, "keep the given label"),
        Action("relabel", "chosen", 1.0, False, "set the class the reviewer chose"),
        Action("ambiguous", "soft", 1.0, True, "train on the soft label (its top class)"),
        Action("exclude", "none", 0.0, False, "leave out of training (row kept, weight 0)"),
    )
}

#: What a cleaned manifest's `action` column can say happened to a sample, in display
#: order: a decision that sets a hard label ends as `keep` or `relabel` (a change of
#: label), `ambiguous` and `exclude` as themselves.
OUTCOMES: tuple[str, ...] = ("keep", "relabel", "ambiguous", "exclude")


def get_action(name: str) -> Action:
    """The table entry of `name`; ValueError naming the valid actions otherwise."""
    action = ACTION_TABLE.get(name)
    if action is None:
        raise ValueError(
            f"unknown review action {name!r}; expected one of {', '.join(ACTION_TABLE)}"
        )
    return action


def make_decision(
    action: str,
    row: Mapping[str, Any],
    classes: Sequence[str],
    *,
    label: str | None = None,
    note: str = "",
) -> Decision:
    """The decision a reviewer's `action` on a scores row records.

    Args:
        action: an `ACTION_TABLE` name.
        row: the sample's scores row (`sample_id`, `given_label`, `proposed_label`,
            `soft_label`).
        classes: the run's classes, in the order of `soft_label`.
        label: the class the reviewer chose (`relabel` only; ignored otherwise).
        note: what the reviewer typed.
    """
    meaning = get_action(action)
    soft = None
    if meaning.label_from == "proposed":
        label = str(row["proposed_label"])
    elif meaning.label_from == "given":
        label = str(row["given_label"])
    elif meaning.label_from == "soft":
        soft = [float(x) for x in row["soft_label"]]
        label = classes[int(np.argmax(soft))]
    elif meaning.label_from == "none":
        label = None
    return Decision(str(row["sample_id"]), action, label=label, soft_label=soft, note=note)


def get_outcomes(actions: Sequence[str], labels: Sequence[Any], given: Sequence[str]) -> np.ndarray:
    """The manifest `action` of each decision (see `OUTCOMES`).

    Args:
        actions: (N,) `ACTION_TABLE` names.
        labels: (N,) the hard label each decision ends on.
        given: (N,) the samples' given labels.

    Returns:
        (N,) object array: `keep` or `relabel` for actions that set a hard label (keep when
        the label is the given one), the action's own name otherwise.
    """
    actions = np.asarray(actions, dtype=object)
    hard = np.isin(actions, [a.name for a in ACTION_TABLE.values() if a.sets_hard_label])
    same = np.asarray(labels, dtype=object) == np.asarray(given, dtype=object)
    return np.where(hard, np.where(same, "keep", "relabel"), actions).astype(object)


def get_weights(outcomes: Sequence[str]) -> np.ndarray:
    """(N,) float32 training weight of each manifest `action` (0 for `exclude`)."""
    weight = {name: a.weight for name, a in ACTION_TABLE.items()}
    return np.array([weight[o] for o in outcomes], dtype=np.float32)
