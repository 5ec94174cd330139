"""End to end in a real browser: `fercleaner review`, a keyboard decision, reload, kill -9, export;
and Markdown in the reviewer name and the URL shown as text, fetching nothing.

Drives Debian's Chromium through Playwright (`.ci/run` installs it); skipped, saying why,
only where that browser is absent.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from run_fixtures import make_run

from fercleaner.app.markup import WORD_JOINER
from fercleaner.review.launch import find_free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian chromium is not installed (apt-get install -y chromium; .ci/run does it)",
    ),
]


def _wait_healthy(proc: subprocess.Popen, url: str, *, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"fercleaner review exited early:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the review app did not answer at {url} within {timeout} s")


def test_keyboard_decision_survives_reload_and_kill_and_is_exported(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    run_dir = make_run(tmp_path)
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "fercleaner", "review", str(run_dir), "--port", str(port)]
        + ["--reviewer", "ann"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_healthy(server, url)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, timeout=60_000)
            page.get_by_text("Given:").wait_for(timeout=60_000)
            labels = page.get_by_test_id("stMarkdownContainer").filter(has_text="Given:")
            assert "Proposed: fear" in labels.inner_text()
            page.get_by_role("button", name="Accept proposal (fear)").wait_for(timeout=30_000)
            page.get_by_role("heading", name="Review:").click()  # focus the page, not an input
            page.keyboard.press("a")  # accept the proposal
            page.get_by_text("Saved img/face_00003.png").wait_for(timeout=30_000)

            page.reload()
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_text("img/face_00003.png").wait_for(timeout=60_000)
            assert "accept → fear (ann)" in sidebar.inner_text()
            page.get_by_text("1 of 6 flagged samples reviewed").wait_for(timeout=30_000)
            page.goto(url + "?sample=img/face_00003.png")
            page.get_by_text("Current decision: accept → fear by ann").wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
            if os.environ.get("FERCLEANER_SCREENSHOT"):
                shutil.copy(tmp_path / "review.png", os.environ["FERCLEANER_SCREENSHOT"])
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the harshest stop: nothing acknowledged is lost
        server.wait(timeout=30)

    out = tmp_path / "export"
    done = subprocess.run(
        [sys.executable, "-m", "fercleaner", "export", str(run_dir), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    train = pd.read_parquet(out / "train.parquet").set_index("sample_id")
    row = train.loc["img/face_00003.png"]
    assert (row["label_name"], row["action"], row["decided_by"], row["reviewer"]) == (
        "fear",
        "relabel",
        "human",
        "ann",
    )


class _Witness(http.server.BaseHTTPRequestHandler):
    """Records every request: a Markdown image or link that renders would land here."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _shown(locator) -> str:
    """The text a locator shows; the app's invisible word joiners (they break autolinks)
    are left out."""
    return locator.inner_text().replace(WORD_JOINER, "")


@contextlib.contextmanager
def _review_server(run_dir: Path, reviewer: str) -> Iterator[str]:
    """`fercleaner review RUN_DIR --reviewer NAME` on a free port; yields its URL."""
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "fercleaner", "review", str(run_dir), "--port", str(port)]
        + ["--reviewer", reviewer],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_healthy(server, url)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_markdown_in_the_reviewer_name_and_the_url_is_shown_as_text_and_fetches_nothing(
    tmp_path: Path,
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    witness = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Witness)
    _Witness.hits = []
    threading.Thread(target=witness.serve_forever, daemon=True).start()
    evil = f"http://127.0.0.1:{witness.server_address[1]}"
    reviewer = f"![r]({evil}/reviewer.png)[eve]({evil}/r)"
    in_url = f"![s]({evil}/sample.png) [click]({evil}/s) <img src={evil}/html.png>"
    run_dir = make_run(tmp_path)
    requested: list[str] = []
    try:
        with _review_server(run_dir, reviewer) as url, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url + "?sample=" + urllib.parse.quote(in_url, safe=""), timeout=60_000)
            alert = page.get_by_test_id("stAlert").filter(has_text="is not part of this run")
            alert.wait_for(timeout=60_000)
            assert f"Sample '{in_url}' is not part of this run" in _shown(alert)

            page.get_by_role("button", name="Accept proposal (fear)").wait_for(timeout=30_000)
            page.get_by_role("heading", name="Review:").click()  # focus the page, not an input
            page.keyboard.press("a")  # a decision stored under the hostile reviewer name
            page.get_by_text("Saved img/face_00003.png").wait_for(timeout=30_000)

            page.goto(url + "?sample=img/face_00003.png")  # a full run: history and sidebar
            history = page.get_by_test_id("stAlert").filter(has_text="Current decision:")
            history.wait_for(timeout=60_000)
            assert f"Current decision: accept → fear by {reviewer} at" in _shown(history)
            recent = page.get_by_test_id("stSidebar").get_by_role("listitem")
            recent.first.wait_for(timeout=30_000)
            assert f"img/face_00003.png accept → fear ({reviewer})" in _shown(recent.first)
            page.wait_for_timeout(1_000)  # time for any image the page would load
            page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
            assert page.locator(f"img[src^='{evil}']").count() == 0
            assert page.locator(f"a[href^='{evil}']").count() == 0
            browser.close()
    finally:
        witness.shutdown()
        witness.server_close()
    assert _Witness.hits == []  # the payload's server was never asked for anything
    assert not [u for u in requested if u.startswith(evil)]
