"""Batch mode: a grid of unreviewed suspects sharing one given->proposed pair.

The reviewer ticks the few that are wrong and accepts the rest in one transaction: the
way through thousands of near-identical proposals.
"""

from __future__ import annotations

import streamlit as st

from fercleaner.app import actions, keys
from fercleaner.app.data import get_decided_ids, get_pairs, get_run, get_store, read_image
from fercleaner.app.markup import escape_markdown
from fercleaner.app.queue_view import render_flash, render_pending_ui
from fercleaner.review.queue import FLAGGED_ISSUE_TYPES, QueueFilter, find_queue

PAGE_SIZE = 24
GRID_COLUMNS = 6
THUMB_PX = 128


def batch_ui(run_dir: str) -> None:
    """Pick a pair, show one page of its suspects, accept all but the opted-out ones."""
    run = get_run(run_dir)
    store = get_store(run_dir)
    render_flash()
    render_pending_ui(run_dir)
    pairs = get_pairs(run_dir)
    if pairs.empty:
        st.info("No flagged sample has a proposal different from its given label.")
        return
    options = [
        f"{g} → {p}" for g, p in zip(pairs["given_label"], pairs["proposed_label"], strict=True)
    ]
    totals = dict(zip(options, pairs["count"], strict=True))
    choice = st.selectbox(
        "Given → proposed",
        options,
        key=keys.BATCH_PAIR,
        format_func=lambda o: f"{o}  ({totals[o]} flagged)",
    )
    given, proposed = choice.split(" → ", 1)
    decided = get_decided_ids(run_dir, store.last_event_id())
    skipped = st.session_state.get(keys.BATCH_SKIPPED, set())
    pos = find_queue(
        run.scores,
        decided | skipped,
        QueueFilter(issue_types=FLAGGED_ISSUE_TYPES, pairs=[(given, proposed)], reviewed=False),
    )
    page = run.scores.iloc[pos[:PAGE_SIZE]]
    shown_given, shown_proposed = escape_markdown(given), escape_markdown(proposed)
    if page.empty:
        st.success(
            f"Every {shown_given} → {shown_proposed} suspect is reviewed (or left for the queue)."
        )
        return
    st.caption(
        f"{len(pos)} unreviewed; showing the {len(page)} most suspect. Tick the ones that are "
        f"NOT {shown_proposed}, then accept the rest."
    )
    ids = page["sample_id"].tolist()
    for start in range(0, len(ids), GRID_COLUMNS):
        cols = st.columns(GRID_COLUMNS)
        for col, sid in zip(cols, ids[start : start + GRID_COLUMNS], strict=False):
            with col:
                st.image(read_image(run, sid, size=THUMB_PX), width=THUMB_PX)
                quality = run.row(sid)["label_quality"]
                st.checkbox(
                    f"skip ({quality:.2f})",
                    key=keys.batch_skip_key(sid),
                    help=escape_markdown(sid),
                )
    n_skip = sum(bool(st.session_state.get(keys.batch_skip_key(s))) for s in ids)
    st.button(
        f"Accept {len(ids) - n_skip} as {shown_proposed}",
        key=keys.BATCH_ACCEPT,
        type="primary",
        on_click=actions.accept_batch,
        args=(run_dir, ids, proposed),
    )
