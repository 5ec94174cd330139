"""Every session-state and widget key of the review app, in one place.

Tests drive the app through these keys (`AppTest.button(key=...)`), so they are part of
the app's interface: rename one and the tests say where.
"""

from __future__ import annotations

#: Environment variables `fercleaner review` passes to the app.
ENV_RUN_DIR = "FERCLEANER_RUN_DIR"
ENV_REVIEWER = "FERCLEANER_REVIEWER"

#: Query parameter holding the sample on screen, so a reload comes back to it.
QUERY_SAMPLE = "sample"

# -- session state (not widgets) -------------------------------------------------------
CURRENT = "current_sample_id"  # sample_id on screen in the queue
QUEUE_IDS = "queue_ids"  # sample ids of the queue as last drawn (for next/previous)
FLASH = "flash_message"  # one-shot message shown after a decision
PENDING = "pending_saves"  # decisions the store refused (busy), kept for resubmission
LEFT_TO_OTHERS = "left_to_others"  # batch accept: others' decisions it left standing

# -- sidebar ---------------------------------------------------------------------------
MODE = "mode"
REVIEWER = "reviewer"

# -- queue filters ---------------------------------------------------------------------
F_ISSUE = "filter_issue_types"
F_GIVEN = "filter_given"
F_PROPOSED = "filter_proposed"
F_PAIR = "filter_pairs"
F_SPLIT = "filter_splits"
F_REVIEWED = "filter_reviewed"

# -- decision bar ----------------------------------------------------------------------
NOTE = "note"
BTN_ACCEPT = "btn_accept"
BTN_KEEP = "btn_keep"
BTN_AMBIGUOUS = "btn_ambiguous"
BTN_EXCLUDE = "btn_exclude"
BTN_UNDO = "btn_undo"
BTN_NEXT = "btn_next"
BTN_PREV = "btn_prev"
BTN_RELABEL_PREFIX = "btn_relabel::"  # + class name
BTN_SAVE_AGAIN = "btn_save_again"  # resubmit the decisions the store refused

# -- batch mode ------------------------------------------------------------------------
BATCH_PAIR = "batch_pair"
BATCH_SKIP_PREFIX = "batch_skip::"  # + sample_id
BATCH_ACCEPT = "batch_accept"
BATCH_SKIPPED = "batch_skipped"  # session state: ids opted out of a batch this session

#: Modes of the sidebar switch.
MODES: tuple[str, ...] = ("Queue", "Batch", "Overview")

#: Keyboard shortcuts of the decision bar (Streamlit reserves C and R).
SHORTCUTS: dict[str, str] = {
    BTN_ACCEPT: "A",
    BTN_KEEP: "K",
    BTN_AMBIGUOUS: "M",
    BTN_EXCLUDE: "X",
    BTN_UNDO: "U",
    BTN_NEXT: "N",
    BTN_PREV: "P",
}


def relabel_key(class_name: str) -> str:
    """Widget key of the button that relabels to `class_name`."""
    return f"{BTN_RELABEL_PREFIX}{class_name}"


def batch_skip_key(sample_id: str) -> str:
    """Widget key of a batch item's opt-out checkbox."""
    return f"{BATCH_SKIP_PREFIX}{sample_id}"
