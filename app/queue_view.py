"""Queue mode: filters, then one sample at a time with the decision bar.

The item and its decision bar are one `st.fragment`, so a click reruns only them (the
filters and the sidebar are not recomputed) and the next image appears at once.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from fercleaner.app import actions, keys
from fercleaner.app.data import get_decided_ids, get_pairs, get_run, get_store, read_image
from fercleaner.app.markup import escape_markdown
from fercleaner.review.queue import (
    FLAGGED_ISSUE_TYPES,
    ISSUE_TYPES,
    QueueFilter,
    find_members,
    find_queue,
)

REVIEWED_CHOICES: dict[str, bool | None] = {"Unreviewed": False, "Reviewed": True, "All": None}
IMAGE_PX = 320


def filters_ui(run_dir: str) -> QueueFilter:
    """Draw the queue filters (sidebar) and return the filter they describe."""
    run = get_run(run_dir)
    pairs = get_pairs(run_dir)
    pair_names = [
        f"{g} → {p}" for g, p in zip(pairs["given_label"], pairs["proposed_label"], strict=True)
    ]
    splits = sorted(run.scores["split"].unique().tolist())
    side = st.sidebar
    side.subheader("Queue filters")
    issue = side.multiselect(
        "Issue type",
        ISSUE_TYPES,
        default=list(FLAGGED_ISSUE_TYPES),
        key=keys.F_ISSUE,
        on_change=actions.reset_position,
    )
    given = side.multiselect(
        "Given class", run.classes, key=keys.F_GIVEN, on_change=actions.reset_position
    )
    proposed = side.multiselect(
        "Proposed class", run.classes, key=keys.F_PROPOSED, on_change=actions.reset_position
    )
    pair = side.multiselect(
        "Class pair (given → proposed)",
        pair_names,
        key=keys.F_PAIR,
        on_change=actions.reset_position,
    )
    split = side.multiselect("Split", splits, key=keys.F_SPLIT, on_change=actions.reset_position)
    reviewed = side.radio(
        "Show",
        list(REVIEWED_CHOICES),
        index=0,
        key=keys.F_REVIEWED,
        horizontal=True,
        on_change=actions.reset_position,
    )
    return QueueFilter(
        issue_types=issue or None,
        given=given or None,
        proposed=proposed or None,
        pairs=[tuple(p.split(" → ", 1)) for p in pair] or None,
        splits=split or None,
        reviewed=REVIEWED_CHOICES[reviewed],
    )


def queue_ui(run_dir: str, flt: QueueFilter) -> None:
    """Compute the queue for `flt`, pick the sample on screen and draw it."""
    run = get_run(run_dir)
    store = get_store(run_dir)
    decided = get_decided_ids(run_dir, store.last_event_id())
    queue_ids = run.scores["sample_id"].to_numpy(dtype=object)[find_queue(run.scores, decided, flt)]
    st.session_state[keys.QUEUE_IDS] = queue_ids
    fresh_session = keys.CURRENT not in st.session_state
    current = st.session_state.get(keys.CURRENT)
    if fresh_session and keys.QUERY_SAMPLE in st.query_params:  # a reload or a shared link
        current = st.query_params[keys.QUERY_SAMPLE]
        if not run.has_sample(current):
            # the URL is anyone's to write: show it as text, never as Markdown
            st.error(
                f"Sample {escape_markdown(repr(current))} is not part of this run; showing the "
                "queue instead."
            )
            current = None
    if current is None and len(queue_ids):
        current = queue_ids[0]
    st.session_state[keys.CURRENT] = current
    decision_fragment(run_dir)


@st.fragment
def decision_fragment(run_dir: str) -> None:
    """The sample on screen, what is known about it, and the decision bar."""
    run = get_run(run_dir)
    store = get_store(run_dir)
    render_flash()
    render_pending_ui(run_dir)
    queue_ids = st.session_state.get(keys.QUEUE_IDS, ())
    current = st.session_state.get(keys.CURRENT)
    decided = get_decided_ids(run_dir, store.last_event_id())
    flagged_ids = run.scores["sample_id"][run.scores["is_label_issue"]]
    flagged = len(flagged_ids)
    n_done = int(find_members(flagged_ids, decided, len(flagged_ids)).sum())
    # the queue was computed at the last full rerun; count what is still undecided in it
    open_in_queue = len(queue_ids) - int(find_members(queue_ids, decided, len(queue_ids)).sum())
    st.progress(
        n_done / flagged if flagged else 1.0,
        text=f"{n_done} of {flagged} flagged samples reviewed - "
        f"{open_in_queue} of {len(queue_ids)} in this queue undecided",
    )
    if current is None:
        st.query_params.pop(keys.QUERY_SAMPLE, None)
        st.success(
            "Nothing left in this queue. Change the filters, or export with `fercleaner export`."
        )
        decision_bar_ui(run_dir, None)
        return
    st.query_params[keys.QUERY_SAMPLE] = current
    row = run.row(current)
    render_item(run_dir, row)
    decision_bar_ui(run_dir, row)
    render_history(store.history(current))


def render_flash() -> None:
    """Show (once) the message the last callback left."""
    flash = st.session_state.pop(keys.FLASH, None)
    if flash:
        kind, text = flash  # composed by `actions`, which escapes the user text in it
        getattr(st, kind)(text)


def render_pending_ui(run_dir: str) -> None:
    """While decisions wait to be saved (the store was locked), say so and offer Save again."""
    pending = st.session_state.get(keys.PENDING) or []
    if not pending:
        return
    n = sum(len(p.decisions) for p in pending)
    st.warning(
        f"{n} decision(s) not saved yet: another process held the review store's lock. "
        "They are kept in this tab until saved; a reload or closing the tab drops them."
    )
    st.button(
        "Save again",
        key=keys.BTN_SAVE_AGAIN,
        type="primary",
        on_click=actions.save_again,
        args=(run_dir,),
    )


def render_item(run_dir: str, row: pd.Series) -> None:
    """Image large, labels, soft label chart, crowd votes, uncertainty and per-method signals."""
    run = get_run(run_dir)
    left, right = st.columns([1, 1.3])
    with left:
        st.image(read_image(run, row["sample_id"], size=IMAGE_PX), width=IMAGE_PX)
        st.caption(f"{escape_markdown(row['sample_id'])} - split {escape_markdown(row['split'])}")
    with right:
        given, proposed, predicted, issue = (
            escape_markdown(row[c])
            for c in ("given_label", "proposed_label", "predicted_label", "issue_type")
        )
        st.markdown(
            f"**Given:** {given} &nbsp; **Proposed:** {proposed} "
            f"&nbsp; **Predicted:** {predicted} &nbsp; **Issue:** {issue}"
        )
        a, b = st.columns(2)
        a.metric("Label quality", f"{row['label_quality']:.3f}", help="low = suspect")
        b.metric("Uncertainty", f"{row['uncertainty']:.3f}", help="high = less certain")
        st.altair_chart(soft_label_chart(run.classes, row), width="stretch")
        if has_votes(row):
            render_votes(run.classes, row)
        if run.method_columns:
            signals = pd.DataFrame(
                {"signal": run.method_columns, "value": [float(row[c]) for c in run.method_columns]}
            )
            st.dataframe(signals, hide_index=True, width="stretch")


def soft_label_chart(classes: list[str], row: pd.Series) -> alt.Chart:
    """Soft label and model probabilities per class, in class order."""
    data = pd.DataFrame(
        {
            "class": classes * 2,
            "value": np.concatenate([np.asarray(row["soft_label"]), np.asarray(row["pred_probs"])]),
            "series": ["soft label"] * len(classes) + ["model probability"] * len(classes),
        }
    )
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=classes, title=None, axis=alt.Axis(labelAngle=0)),
            xOffset="series:N",
            y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1]), title=None),
            color=alt.Color("series:N", legend=alt.Legend(orient="top", title=None)),
            tooltip=["class", "series", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(height=200)
    )


def has_votes(row: pd.Series) -> bool:
    """Whether the sample had crowd votes (scores of a dataset with votes; null otherwise)."""
    votes = row.get("votes")
    return votes is not None and np.ndim(votes) == 1 and float(row.get("vote_count", 0)) > 0


def render_votes(classes: list[str], row: pd.Series) -> None:
    """The crowd's votes per class beside the soft label (the expected vote distribution of
    the votes and the model) and the model's probabilities."""
    count, quality = float(row["vote_count"]), float(row["consensus_quality"])
    st.caption(
        f"Crowd: {count:g} vote(s); consensus {escape_markdown(row['consensus_label'])}"
        f" ({quality:.2f}), the soft label combines the votes with the model"
    )
    table = pd.DataFrame(
        {
            "class": classes,
            "votes": [f"{v:g}" for v in np.asarray(row["votes"], dtype=float)],
            "soft label": np.round(np.asarray(row["soft_label"], dtype=float), 3),
            "model probability": np.round(np.asarray(row["pred_probs"], dtype=float), 3),
        }
    )
    st.dataframe(table, hide_index=True, width="stretch")


def decision_bar_ui(run_dir: str, row: pd.Series | None) -> None:
    """Action buttons (with keyboard shortcuts), class buttons, note, undo and navigation."""
    run = get_run(run_dir)
    off = row is None
    # the sample drawn here goes with every decision click (see `actions.decide`)
    shown_id = None if off else str(row["sample_id"])
    cols = st.columns(4)
    proposed = "" if off else f" ({escape_markdown(row['proposed_label'])})"
    buttons = (
        (keys.BTN_ACCEPT, f"Accept proposal{proposed}", "accept"),
        (keys.BTN_KEEP, "Keep given", "keep"),
        (keys.BTN_AMBIGUOUS, "Ambiguous", "ambiguous"),
        (keys.BTN_EXCLUDE, "Exclude", "exclude"),
    )
    for col, (key, label, action) in zip(cols, buttons, strict=True):
        col.button(
            label,
            key=key,
            shortcut=keys.SHORTCUTS[key],
            disabled=off,
            width="stretch",
            type="primary" if action == "accept" else "secondary",
            on_click=actions.decide,
            args=(run_dir, shown_id, action),
        )
    st.caption("Or choose the class:")
    class_cols = st.columns(len(run.classes))
    for i, (col, name) in enumerate(zip(class_cols, run.classes, strict=True)):
        col.button(
            escape_markdown(name),
            key=keys.relabel_key(name),
            shortcut=str(i + 1) if i < 9 else None,
            disabled=off,
            width="stretch",
            on_click=actions.decide,
            args=(run_dir, shown_id, "relabel", name),
        )
    st.text_input("Note (saved with the next decision)", key=keys.NOTE, disabled=off)
    nav = st.columns(3)
    nav[0].button(
        "Previous",
        key=keys.BTN_PREV,
        shortcut=keys.SHORTCUTS[keys.BTN_PREV],
        on_click=actions.move,
        args=(-1,),
        disabled=off,
        width="stretch",
    )
    nav[1].button(
        "Skip",
        key=keys.BTN_NEXT,
        shortcut=keys.SHORTCUTS[keys.BTN_NEXT],
        on_click=actions.move,
        args=(+1,),
        disabled=off,
        width="stretch",
    )
    nav[2].button(
        "Undo my last decision",
        key=keys.BTN_UNDO,
        shortcut=keys.SHORTCUTS[keys.BTN_UNDO],
        on_click=actions.undo,
        args=(run_dir,),
        width="stretch",
    )


def render_history(history: pd.DataFrame) -> None:
    """Every event on this sample: who decided what, including undos and other reviewers.

    Reviewer names and labels are user text: escaped, never Markdown.
    """
    if history.empty:
        st.caption("No decision on this sample yet.")
        return
    undone = set(history["undoes"].dropna().astype(int))
    live = history[(history["action"] != "undo") & ~history["event_id"].isin(undone)]
    if len(live):
        last = live.iloc[-1]
        outcome = (
            "excluded"
            if last["action"] == "exclude"
            else f"{last['action']} → {escape_markdown(last['label'])}"
        )
        st.info(
            f"Current decision: {outcome} by {escape_markdown(last['reviewer'])} at "
            f"{escape_markdown(last['decided_at'][:19])}"
        )
        others = live[live["reviewer"] != last["reviewer"]]
        if len(others):
            st.warning(
                "Also decided by "
                + ", ".join(
                    f"{escape_markdown(r.reviewer)} ({r.action} → {escape_markdown(r.label)})"
                    for r in others.itertuples()
                )
            )
    with st.expander(f"History ({len(history)} events)"):
        st.dataframe(
            history[["event_id", "action", "label", "reviewer", "decided_at", "note", "undoes"]],
            hide_index=True,
        )
