"""Streamlit entry script of the review app: `fercleaner review RUN_DIR` runs this file.

The run directory and the default reviewer arrive in the environment variables of
`fercleaner.app.keys` (set by the CLI); everything else lives in the views.
"""

from __future__ import annotations

import os

import streamlit as st

from fercleaner.app import keys
from fercleaner.app.batch_view import batch_ui
from fercleaner.app.data import get_run, get_store
from fercleaner.app.markup import escape_markdown
from fercleaner.app.overview_view import render_overview
from fercleaner.app.queue_view import filters_ui, queue_ui
from fercleaner.errors import FercleanerError


def main() -> None:
    """Draw the app for the run named by the environment."""
    st.set_page_config(page_title="fercleaner review", layout="wide")
    run_dir = os.environ.get(keys.ENV_RUN_DIR)
    if not run_dir:
        st.error("No run directory given. Start the app with `fercleaner review RUN_DIR`.")
        st.stop()
    try:
        run = get_run(run_dir)
        get_store(run_dir)
    except FercleanerError as exc:
        st.error(escape_markdown(exc))
        st.stop()
    mode = sidebar_ui(run_dir)
    st.title(f"Review: {escape_markdown(run.run_id)}")
    if mode == "Queue":
        queue_ui(run_dir, filters_ui(run_dir))
    elif mode == "Batch":
        batch_ui(run_dir)
    else:
        render_overview(run_dir)
    render_recent(run_dir)


def sidebar_ui(run_dir: str) -> str:
    """Reviewer name and mode; returns the chosen mode."""
    run = get_run(run_dir)
    side = st.sidebar
    method = escape_markdown(run.metadata.get("method", "?"))
    side.caption(f"{len(run.scores):,} samples - method {method} - {escape_markdown(run.run_dir)}")
    if keys.REVIEWER not in st.session_state:
        st.session_state[keys.REVIEWER] = os.environ.get(keys.ENV_REVIEWER, "")
    side.text_input("Reviewer", key=keys.REVIEWER, help="Every decision is stored under this name")
    return side.radio("Mode", keys.MODES, key=keys.MODE, horizontal=True)


def render_recent(run_dir: str) -> None:
    """The last few events in the store (all reviewers): proof that decisions are saved.

    Sample ids, labels and reviewer names are user text: escaped, never Markdown.
    """
    recent = get_store(run_dir).recent(limit=5)
    st.sidebar.subheader("Recent decisions")
    if recent.empty:
        st.sidebar.caption("None yet.")
        return
    lines = []
    for r in recent.itertuples():
        what = {"exclude": "exclude", "undo": f"undo of #{r.undoes}"}.get(
            r.action, f"{r.action} → {escape_markdown(r.label)}"
        )
        lines.append(f"- {escape_markdown(r.sample_id)} {what} ({escape_markdown(r.reviewer)})")
    st.sidebar.markdown("\n".join(lines))


if __name__ == "__main__":  # Streamlit runs this file as __main__
    main()
