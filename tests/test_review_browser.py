"""End to end in a real browser: `fercleaner review`, a keyboard decision, reload, kill -9, export.

Drives Debian's Chromium through Playwright (`.ci/run` installs it); skipped, saying why,
only where that browser is absent.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from run_fixtures import make_run

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
