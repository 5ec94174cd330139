"""Widget callbacks: every decision is written to the store here, before the rerun draws.

Streamlit runs a callback before the script reruns, so a decision is on disk (committed
and fsynced) by the time the reviewer sees the next image; session state only holds
where the reviewer is, never what they decided.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from fercleaner.app import keys
from fercleaner.app.data import get_run, get_store
from fercleaner.review.store import Decision


def current_reviewer() -> str | None:
    """The reviewer name typed in the sidebar, or None (then nothing is recorded)."""
    name = str(st.session_state.get(keys.REVIEWER) or "").strip()
    if not name:
        st.session_state[keys.FLASH] = ("error", "Type your name in the sidebar first.")
        return None
    return name


def decide(run_dir: str, action: str, label: str | None = None) -> None:
    """Record `action` on the sample on screen, then move to the next one in the queue."""
    reviewer = current_reviewer()
    sample_id = st.session_state.get(keys.CURRENT)
    if reviewer is None or sample_id is None:
        return
    run = get_run(run_dir)
    row = run.row(sample_id)
    soft = None
    if action == "accept":
        label = str(row["proposed_label"])
    elif action == "keep":
        label = str(row["given_label"])
    elif action == "ambiguous":
        soft = [float(x) for x in row["soft_label"]]
        label = run.classes[int(np.argmax(soft))]
    note = str(st.session_state.get(keys.NOTE) or "")
    store = get_store(run_dir)
    before = store.current_decisions_of([sample_id])
    store.record(
        Decision(sample_id, action, label=label, soft_label=soft, note=note), reviewer=reviewer
    )
    st.session_state[keys.NOTE] = ""
    message = f"Saved {sample_id}: {describe(action, label)}"
    if len(before) and before["reviewer"].iloc[0] != reviewer:
        # another reviewer (or tab) decided first: say so instead of overriding silently
        prev = before.iloc[0]
        message += (
            f". This replaces {prev['reviewer']}'s decision "
            f"({describe(prev['action'], prev['label'])}); both stay in the history."
        )
        st.session_state[keys.FLASH] = ("warning", message)
    else:
        st.session_state[keys.FLASH] = ("success", message)
    st.session_state[keys.CURRENT] = step(sample_id, +1)


def describe(action: str, label: str | None) -> str:
    """A decision in words: `exclude`, or `accept → fear`."""
    return "exclude" if action == "exclude" else f"{action} → {label}"


def undo(run_dir: str) -> None:
    """Undo this reviewer's latest decision (read from the store, so it survives reloads)."""
    reviewer = current_reviewer()
    if reviewer is None:
        return
    event = get_store(run_dir).undo_last(reviewer=reviewer)
    if event is None:
        st.session_state[keys.FLASH] = ("info", f"No decision by {reviewer} left to undo.")
        return
    st.session_state[keys.CURRENT] = event.sample_id
    st.session_state[keys.FLASH] = ("info", f"Undid {event.action} on {event.sample_id}")


def move(offset: int) -> None:
    """Go to the next (+1) or previous (-1) sample of the queue."""
    current = st.session_state.get(keys.CURRENT)
    if current is not None:
        st.session_state[keys.CURRENT] = step(current, offset)


def step(sample_id: str, offset: int) -> str | None:
    """The queue neighbour of `sample_id` (the queue head when it is not in the queue)."""
    queue: Sequence[str] = st.session_state.get(keys.QUEUE_IDS, ())
    if len(queue) == 0:
        return None
    hits = np.flatnonzero(np.asarray(queue, dtype=object) == sample_id)
    if len(hits) == 0:
        return queue[0]
    pos = int(hits[0]) + offset
    if pos >= len(queue):
        return None  # end of the queue
    return queue[max(pos, 0)]


def reset_position() -> None:
    """Filters changed: start again at the head of the new queue."""
    st.session_state[keys.CURRENT] = None
    st.query_params.pop(keys.QUERY_SAMPLE, None)


def accept_batch(run_dir: str, sample_ids: Sequence[str], proposed: str) -> None:
    """Accept the proposal for every batch item not opted out, in one transaction."""
    reviewer = current_reviewer()
    if reviewer is None:
        return
    skipped = {s for s in sample_ids if st.session_state.get(keys.batch_skip_key(s))}
    chosen = [s for s in sample_ids if s not in skipped]
    get_store(run_dir).record_many(
        [Decision(s, "accept", label=proposed) for s in chosen], reviewer=reviewer
    )
    left = st.session_state.setdefault(keys.BATCH_SKIPPED, set())
    left.update(skipped)
    st.session_state[keys.FLASH] = (
        "success",
        f"Accepted {len(chosen)} → {proposed}; {len(skipped)} left for one-by-one review.",
    )
