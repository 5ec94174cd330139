"""The review app under hostile input: user text drawn as text, a locked store loses no click.

Markdown payloads arrive in the reviewer name, the `?sample=` URL, a run's sample ids and
class names; every element Streamlit draws as Markdown (alerts, captions, widget labels
and tooltips) is parsed here with a CommonMark parser, which must find no image, link or
raw HTML and must show the payload's characters. The real-browser check (nothing
fetched) is in test_review_browser.py.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _review_lock import count_events, store_locked
from app_harness import APP, current, decisions, open_run_for_app, sid, start
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from fercleaner.app import actions, data, keys
from fercleaner.app.markup import WORD_JOINER, escape_markdown
from fercleaner.review.store import Decision, DecisionStore
from fercleaner.scoring import write_scores

HOST = "http://127.0.0.1:9"  # nothing listens there; the browser test runs a real server
PAYLOAD = f"![p]({HOST}/p.png) [click]({HOST}/) <img src={HOST}/h.png> {HOST}/auto **b** $x$"
REVIEWER = f"![r]({HOST}/r.png)[eve]({HOST}/)"
CLASS = f"![c]({HOST}/c.png)"
_MD = MarkdownIt("commonmark")


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return open_run_for_app(tmp_path, monkeypatch)


def markdown_sources(at: AppTest) -> list[str]:
    """Every string the app handed to an element that renders Markdown."""
    sources = []
    for kind in ("markdown", "caption", "title", "success", "info", "warning", "error"):
        sources += [e.value for e in getattr(at, kind)]
    for kind in ("button", "checkbox"):
        for widget in getattr(at, kind):
            sources += [widget.label, widget.help or ""]
    return sources


def _tokens(source: str):
    for token in _MD.parse(source):
        yield token
        yield from token.children or ()


#: What GitHub-flavoured Markdown (remark-gfm, as Streamlit uses it) turns into links in
#: plain text after escapes are resolved, and Streamlit's `:emoji:` / `:material/x:`.
_LITERALS = re.compile(
    r"https?://|www\.|[-.\w+]+@[-\w]+(\.[-\w]+)+|:[-+\w/]+:", re.IGNORECASE | re.ASCII
)


def rendered_text(source: str) -> str:
    """The text `source` shows, after checking it renders no image, link, HTML or literal."""
    kinds = {t.type for t in _tokens(source)}
    assert not kinds & {"image", "link_open", "html_inline", "html_block"}, source
    text = html.unescape(re.sub(r"<[^>]+>", "", _MD.render(source)))
    assert not _LITERALS.search(text), text  # no autolink literal, emoji or icon code
    return text.replace(WORD_JOINER, "")  # invisible: what the reader sees


def shown_text(at: AppTest) -> str:
    """What the reader sees in every Markdown element, each checked by `rendered_text`."""
    return "\n".join(rendered_text(source) for source in markdown_sources(at))


def test_escape_markdown_shows_every_character_and_renders_nothing() -> None:
    text = (
        PAYLOAD + r" \` # - 1. > | ~~s~~ :red[x] :smile: :material/home: &amp; _i_ "
        "www.example.com ann@example.com 04:17:43 :100: line\nbreak"
    )
    source = escape_markdown(text)
    assert {t.type for t in _tokens(source)} <= {
        "paragraph_open",
        "paragraph_close",
        "inline",
        "text",
    }
    assert rendered_text(source).strip() == text.replace("\n", " ")
    assert escape_markdown("img/face_00003.png") == r"img\/face\_00003\.png"  # no joiner


def test_a_markdown_payload_in_the_url_is_shown_as_text(run_dir: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[keys.QUERY_SAMPLE] = PAYLOAD
    at.run()
    assert not at.exception
    assert "not part of this run" in at.error[0].value
    assert PAYLOAD in shown_text(at)
    assert current(at) == sid(3)  # refused; the queue head is shown instead


def test_a_markdown_payload_in_reviewer_names_is_shown_as_text(run_dir: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(4), "keep", "anger"), reviewer=REVIEWER)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params[keys.QUERY_SAMPLE] = sid(4)
    at.run()
    text = shown_text(at)
    assert f"by {REVIEWER} at" in text  # the history
    assert f"({REVIEWER})" in text  # the sidebar's recent decisions
    at.button(key=keys.BTN_EXCLUDE).click().run()
    assert f"replaces {REVIEWER}'s decision" in shown_text(at)
    at.sidebar.text_input(key=keys.REVIEWER).input(CLASS).run()  # a name typed in the app
    at.button(key=keys.BTN_UNDO).click().run()
    assert f"No decision by {CLASS} left to undo" in shown_text(at)
    assert decisions(run_dir)[sid(4)][:3] == ("exclude", None, "ann")


def test_markdown_payloads_in_a_runs_sample_ids_and_classes_are_shown_as_text(
    run_dir: Path,
) -> None:
    path = run_dir / "scores.parquet"
    meta = pq.read_schema(path).metadata[b"fercleaner"]
    frame = pd.read_parquet(path)
    frame.loc[3, "sample_id"] = PAYLOAD  # row 3 (sadness -> fear) heads the queue
    for column in ("given_label", "predicted_label", "proposed_label"):
        frame[column] = frame[column].replace("fear", CLASS)
    meta = json.loads(meta)
    meta["classes"] = [CLASS if c == "fear" else c for c in meta["classes"]]
    write_scores(frame, path, metadata=meta)
    at = start()
    assert current(at) == PAYLOAD
    text = shown_text(at)
    assert f"{PAYLOAD} - split" in text and f"Proposed: {CLASS}" in text.replace("\xa0", " ")
    assert at.button(key=keys.relabel_key(CLASS)).label == escape_markdown(CLASS)
    at.button(key=keys.BTN_ACCEPT).click().run()
    assert f"Saved {PAYLOAD}: accept → {CLASS}" in shown_text(at)
    at.sidebar.radio(key=keys.MODE).set_value("Overview").run()
    assert not at.exception
    at.sidebar.radio(key=keys.MODE).set_value("Batch").run()
    at.selectbox(key=keys.BATCH_PAIR).set_value("happiness → surprise").run()
    shown_text(at)  # tooltips carry the sample ids
    assert decisions(run_dir)[PAYLOAD][:2] == ("accept", CLASS)


# -- another process holds the store's lock (issue 13, item 9) ------------------------------


@pytest.fixture
def impatient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give up on a locked store after 0.2 s x 2 tries instead of 3 s x 3."""
    monkeypatch.setattr(data, "STORE_BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(actions, "SAVE_ATTEMPTS", 2)
    monkeypatch.setattr(actions, "SAVE_RETRY_PAUSE_S", 0.0)


def test_a_click_on_a_locked_store_is_kept_and_saved_again(run_dir: Path, impatient) -> None:
    at = start()
    store = run_dir / "review.sqlite"
    with store_locked(store):
        at.text_input(key=keys.NOTE).input("eyebrows say fear").run()
        at.button(key=keys.BTN_ACCEPT).click().run()
        assert not at.exception, at.exception  # was: sqlite3.OperationalError
        assert "Not saved: accept → fear on" in at.error[0].value
        assert "kept in this tab" in at.error[0].value
        assert "move it away" not in at.error[0].value
        assert count_events(store) == 0
        assert current(at) == sid(3)  # still on the sample that was not saved
        at.button(key=keys.BTN_SAVE_AGAIN).click().run()  # still locked: still kept
        assert "Not saved" in at.error[0].value and count_events(store) == 0
    at.button(key=keys.BTN_SAVE_AGAIN).click().run()
    assert not at.exception
    assert decisions(run_dir) == {sid(3): ("accept", "fear", "ann", "eyebrows say fear", None)}
    assert "Saved the 1 waiting click" in at.success[0].value
    assert keys.BTN_SAVE_AGAIN not in [b.key for b in at.button]


def test_kept_clicks_are_saved_in_order_by_the_next_click_and_undo_drops_one(
    run_dir: Path, impatient
) -> None:
    at = start()
    store = run_dir / "review.sqlite"
    with store_locked(store):
        at.button(key=keys.BTN_ACCEPT).click().run()  # sid 3: kept
        at.button(key=keys.BTN_NEXT).click().run()
        assert current(at) == sid(0)
        at.button(key=keys.BTN_KEEP).click().run()  # sid 0: kept
        assert "2 decision(s) not saved yet" in at.warning[0].value
        at.button(key=keys.BTN_UNDO).click().run()  # drops the unsaved keep, not a saved one
        assert "had not been saved" in at.info[0].value
        assert count_events(store) == 0
    at.button(key=keys.BTN_EXCLUDE).click().run()  # the store is free: both go in, in order
    assert not at.exception
    with DecisionStore(store) as s:
        history = s.history()
    assert list(zip(history["sample_id"], history["action"], strict=True)) == [
        (sid(3), "accept"),
        (sid(0), "exclude"),
    ]
    assert "1 earlier click" in at.success[0].value


def test_batch_accept_on_a_locked_store_is_kept(run_dir: Path, impatient) -> None:
    at = start()
    at.sidebar.radio(key=keys.MODE).set_value("Batch").run()
    with store_locked(run_dir / "review.sqlite"):
        at.button(key=keys.BATCH_ACCEPT).click().run()
        assert not at.exception
        assert "Not saved: accept → surprise for 3 samples" in at.error[0].value
    at.button(key=keys.BTN_SAVE_AGAIN).click().run()
    assert set(decisions(run_dir)) == {sid(0), sid(1), sid(2)}
