"""Widget callbacks: every decision is written to the store here, before the rerun draws.

Streamlit runs a callback before the script reruns, so a decision is on disk (committed
and fsynced) by the time the reviewer sees the next image; session state only holds
where the reviewer is, never what they decided, with one exception: when another process
holds the store's write lock past the retries, the click's decisions are kept in
`keys.PENDING` and the reviewer is told they were not saved and can be saved again.

Flash messages are drawn as Markdown, so every user-controlled value in them (sample ids,
labels, reviewer names, error text) is escaped here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from fercleaner.app import keys
from fercleaner.app.data import get_run, get_store
from fercleaner.app.markup import escape_markdown
from fercleaner.review import (
    Decision,
    ReviewStoreBusyError,
    ReviewStoreError,
    get_action,
    make_decision,
)

#: Tries of one save while the store is locked by another process; each waits up to
#: `data.STORE_BUSY_TIMEOUT_S` for the lock.
SAVE_ATTEMPTS = 3
#: Pause between two tries, in seconds.
SAVE_RETRY_PAUSE_S = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class PendingSave:
    """Decisions of one click that the store did not acknowledge, kept in this tab.

    Attributes:
        reviewer: who decided.
        decisions: what to record, in one transaction.
        what: the decisions in words (Markdown-escaped), for messages.
        keep_others: leave samples another reviewer has decided (batch accept).
    """

    reviewer: str
    decisions: tuple[Decision, ...]
    what: str
    keep_others: bool = False


def current_reviewer() -> str | None:
    """The reviewer name typed in the sidebar, or None (then nothing is recorded)."""
    name = str(st.session_state.get(keys.REVIEWER) or "").strip()
    if not name:
        st.session_state[keys.FLASH] = ("error", "Type your name in the sidebar first.")
        return None
    return name


def decide(run_dir: str, shown_id: str | None, action: str, label: str | None = None) -> None:
    """Record `action` on `shown_id`, the sample drawn with the button, then move on.

    The id comes with the click, not from `keys.CURRENT`: the first of two quick presses
    (a doubled shortcut) already moved `keys.CURRENT` to a sample the reviewer has not
    seen yet, so a click whose sample is no longer the current one records nothing.
    """
    reviewer = current_reviewer()
    sample_id = st.session_state.get(keys.CURRENT)
    if reviewer is None or shown_id is None:
        return
    shown = escape_markdown(shown_id)
    if shown_id != sample_id:
        st.session_state[keys.FLASH] = (
            "warning",
            f"Not recorded: this {action} click was for {shown}, which is no longer on "
            "screen (a double press, or a click before the next image was drawn). "
            "Decide on the sample shown now.",
        )
        return
    run = get_run(run_dir)
    note = str(st.session_state.get(keys.NOTE) or "")
    # what the action records (label, soft label) is fercleaner.review.actions' table
    decision = make_decision(action, run.row(sample_id), run.classes, label=label, note=note)
    label = decision.label
    replaced = get_others_decisions(run_dir, [sample_id], reviewer)
    st.session_state[keys.NOTE] = ""  # the note travels with the decision, saved or kept
    waiting = len(st.session_state.get(keys.PENDING) or [])
    if not save(run_dir, reviewer, [decision], f"{describe(action, label)} on {shown}"):
        return  # stay on this sample: the message says the decision is kept, not saved
    message = f"Saved {shown}: {describe(action, label)}"
    if waiting:
        message += f" (and {waiting} earlier click(s) that were waiting to be saved)"
    if len(replaced):
        # the reviewer saw this sample and its history: override, but say so
        prev = replaced.iloc[0]
        message += (
            f". This replaces {escape_markdown(prev['reviewer'])}'s decision "
            f"({describe(prev['action'], prev['label'])}); both stay in the history."
        )
        st.session_state[keys.FLASH] = ("warning", message)
    else:
        st.session_state[keys.FLASH] = ("success", message)
    st.session_state[keys.CURRENT] = step(sample_id, +1)


def get_others_decisions(run_dir: str, sample_ids: Sequence[str], reviewer: str) -> pd.DataFrame:
    """Current decisions on `sample_ids` made by anyone but `reviewer`, read from the store.

    The queue overrides them with a warning (batch accept leaves them alone, through
    `DecisionStore.record_undecided`). Columns as `DecisionStore.current_decisions`; one
    row per such sample.
    """
    current = get_store(run_dir).current_decisions_of(sample_ids)
    return current[current["reviewer"] != reviewer]


def describe(action: str, label: str | None) -> str:
    """A decision in words, as Markdown-safe text: `exclude`, or `accept → fear`."""
    if not get_action(action).records_label:
        return action
    return f"{action} → {escape_markdown(label)}"


def save(
    run_dir: str,
    reviewer: str,
    decisions: Sequence[Decision],
    what: str,
    *,
    keep_others: bool = False,
) -> bool:
    """Record `decisions` (one transaction) after any earlier ones still waiting.

    Args:
        run_dir: the run.
        reviewer: who decided.
        decisions: what to record.
        what: the decisions in words, already Markdown-escaped, for messages.
        keep_others: leave out samples another reviewer has decided, checked in the
            same transaction as the write; they are listed in `keys.LEFT_TO_OTHERS`.

    Returns:
        True when everything is on disk. False when the store refused (another process
        held its lock through every retry): the decisions are kept in `keys.PENDING` and
        an error flash says they were not saved and how to save them again.
    """
    pending = st.session_state.setdefault(keys.PENDING, [])
    pending.append(PendingSave(reviewer, tuple(decisions), what, keep_others))
    return save_pending(run_dir)


def save_pending(run_dir: str) -> bool:
    """Write the kept decisions in click order; stop at the first the store refuses."""
    pending: list[PendingSave] = st.session_state.get(keys.PENDING) or []
    store = get_store(run_dir)
    while pending:
        item = pending[0]
        try:
            if item.keep_others:
                _, left = with_retries(
                    partial(store.record_undecided, item.decisions, reviewer=item.reviewer)
                )
                st.session_state[keys.LEFT_TO_OTHERS] = left
            else:
                with_retries(partial(store.record_many, item.decisions, reviewer=item.reviewer))
        except ReviewStoreError as exc:
            st.session_state[keys.FLASH] = (
                "error",
                f"Not saved: {item.what}. {escape_markdown(exc)}. Your "
                f"{'decision is' if len(pending) == 1 else f'{len(pending)} clicks are'} kept "
                "in this tab: press Save again (a reload or closing the tab drops them).",
            )
            return False
        pending.pop(0)
    return True


def save_again(run_dir: str) -> None:
    """The Save again button: resubmit the decisions the store refused."""
    n = len(st.session_state.get(keys.PENDING) or [])
    if n and save_pending(run_dir):
        st.session_state[keys.FLASH] = ("success", f"Saved the {n} waiting click(s).")


def with_retries(write: Callable[[], T]) -> T:
    """Run a store write, trying again while another process holds the lock."""
    for attempt in range(1, SAVE_ATTEMPTS + 1):
        try:
            return write()
        except ReviewStoreBusyError:
            if attempt == SAVE_ATTEMPTS:
                raise
            time.sleep(SAVE_RETRY_PAUSE_S)
    raise AssertionError("unreachable")


def undo(run_dir: str) -> None:
    """Undo this reviewer's latest decision (read from the store, so it survives reloads).

    A decision still waiting to be saved is simply dropped: it never reached the store.
    """
    reviewer = current_reviewer()
    if reviewer is None:
        return
    pending: list[PendingSave] = st.session_state.get(keys.PENDING) or []
    if pending:
        item = pending.pop()
        st.session_state[keys.CURRENT] = item.decisions[0].sample_id
        st.session_state[keys.FLASH] = ("info", f"Dropped {item.what}; it had not been saved.")
        return
    try:
        event = with_retries(partial(get_store(run_dir).undo_last, reviewer=reviewer))
    except ReviewStoreError as exc:
        st.session_state[keys.FLASH] = (
            "error",
            f"Undo not done: {escape_markdown(exc)}. Press Undo again in a moment.",
        )
        return
    if event is None:
        st.session_state[keys.FLASH] = (
            "info",
            f"No decision by {escape_markdown(reviewer)} left to undo.",
        )
        return
    st.session_state[keys.CURRENT] = event.sample_id
    st.session_state[keys.FLASH] = (
        "info",
        f"Undid {event.action} on {escape_markdown(event.sample_id)}",
    )


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
    """Accept the proposal for every batch item not opted out, in one transaction.

    The page drew only undecided samples, so a sample another reviewer decided since is
    left as they decided it (checked in the write's transaction): nobody looked at their
    decision before this click.
    """
    reviewer = current_reviewer()
    if reviewer is None:
        return
    skipped = {s for s in sample_ids if st.session_state.get(keys.batch_skip_key(s))}
    wanted = [s for s in sample_ids if s not in skipped]
    shown = escape_markdown(proposed)
    run = get_run(run_dir)
    decisions = [make_decision("accept", run.row(s), run.classes) for s in wanted]
    what = f"accept → {shown} for {len(wanted)} samples"
    st.session_state.pop(keys.LEFT_TO_OTHERS, None)
    if not save(run_dir, reviewer, decisions, what, keep_others=True):
        return
    taken = st.session_state.pop(keys.LEFT_TO_OTHERS)
    left = st.session_state.setdefault(keys.BATCH_SKIPPED, set())
    left.update(skipped)
    accepted = len(wanted) - len(taken)
    message = f"Accepted {accepted} → {shown}; {len(skipped)} left for one-by-one review"
    if not len(taken):
        st.session_state[keys.FLASH] = ("success", message + ".")
        return
    who = ", ".join(escape_markdown(r) for r in sorted(set(taken["reviewer"])))
    st.session_state[keys.FLASH] = (
        "warning",
        f"{message}; {len(taken)} skipped: decided by {who} after this page was drawn "
        "(their decisions stand; see them in the queue with Show: Reviewed).",
    )
