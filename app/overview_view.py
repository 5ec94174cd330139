"""Overview mode: what the run found and how far the review has come.

Everything drawn here is a small aggregate computed once (cached); no chart receives
per-sample rows, so the page stays fast on 100k-sample runs.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from fercleaner.app.data import (
    get_action_counts,
    get_decided_ids,
    get_overview_tables,
    get_reviewer_tables,
    get_run,
    get_store,
)
from fercleaner.review.queue import find_members


def render_overview(run_dir: str) -> None:
    """Counts, flags, the given->proposed heatmap, label quality, progress and agreement."""
    run = get_run(run_dir)
    store = get_store(run_dir)
    version = store.last_event_id()
    tables = get_overview_tables(run_dir)
    action_counts = get_action_counts(run_dir, version)
    n_decisions = sum(action_counts.values())
    s = run.scores
    flagged_ids = s["sample_id"][s["is_label_issue"]]
    n_flagged = len(flagged_ids)
    decided = get_decided_ids(run_dir, version)
    n_done = int(find_members(flagged_ids, decided, n_flagged).sum())

    a, b, c, d = st.columns(4)
    a.metric("Samples", f"{len(s):,}")
    b.metric("Flagged", f"{n_flagged:,}")
    c.metric("Flagged reviewed", f"{n_done:,}")
    d.metric("Decisions (all samples)", f"{n_decisions:,}")
    st.progress(
        n_done / n_flagged if n_flagged else 1.0, text="Review progress over flagged samples"
    )

    left, right = st.columns(2)
    with left:
        st.subheader("Samples per class and split")
        st.dataframe(tables["class_split"], width="stretch")
    with right:
        st.subheader("Flagged per class and issue type")
        if tables["flagged_issue"].empty:
            st.caption("Nothing flagged.")
        else:
            st.dataframe(tables["flagged_issue"], width="stretch")

    left, right = st.columns(2)
    with left:
        st.subheader("Given → proposed (flagged)")
        if tables["confusion"].empty:
            st.caption("Nothing flagged.")
        else:
            st.altair_chart(confusion_chart(tables["confusion"], run.classes), width="stretch")
    with right:
        st.subheader("Label quality (low = suspect)")
        st.altair_chart(quality_chart(tables["quality_hist"]), width="stretch")

    st.subheader("Decisions")
    counts, agreement = get_reviewer_tables(run_dir, version)
    left, right = st.columns(2)
    with left:
        if not n_decisions:
            st.caption("No decisions yet.")
        else:
            by_action = pd.DataFrame(
                {"action": list(action_counts), "count": list(action_counts.values())}
            ).sort_values("count", ascending=False, kind="stable")
            st.dataframe(by_action, hide_index=True, width="stretch")
            st.dataframe(counts, hide_index=True, width="stretch")
    with right:
        st.markdown("**Reviewer agreement** (samples decided by two reviewers)")
        if agreement.empty:
            st.caption("No sample has been decided by two reviewers yet.")
        else:
            st.dataframe(agreement, hide_index=True, width="stretch")


def confusion_chart(confusion: pd.DataFrame, classes: list[str]) -> alt.Chart:
    """Heatmap of flagged counts, given label (rows) by proposed label (columns)."""
    base = alt.Chart(confusion, height=320).encode(
        x=alt.X("proposed_label:N", sort=classes, title="proposed"),
        y=alt.Y("given_label:N", sort=classes, title="given"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("count:Q", scale=alt.Scale(scheme="oranges")),
        tooltip=["given_label", "proposed_label", "count"],
    )
    return cells + base.mark_text().encode(text="count:Q")


def quality_chart(hist: pd.DataFrame) -> alt.Chart:
    """Histogram of `label_quality` from pre-binned counts."""
    return (
        alt.Chart(hist, height=320)
        .mark_bar()
        .encode(
            x=alt.X("from:Q", bin="binned", title="label quality"),
            x2="to:Q",
            y=alt.Y("samples:Q", title="samples"),
            tooltip=["from", "to", "samples"],
        )
    )
