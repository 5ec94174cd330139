"""`fercleaner review` served on a free port with a headless Chromium page on it (Playwright).

Shared by the review benchmarks (`bench/review_startup.py`, `bench/scale.py`'s browser
stage). Needs Debian's chromium (`/usr/bin/chromium`) and the `playwright` package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


@dataclass
class ReviewSession:
    """A page on a running review server, and when the `fercleaner review` command started."""

    page: Any
    """playwright.sync_api.Page, not yet navigated."""
    url: str
    started: float
    """`time.perf_counter()` just before the command was launched."""
    healthy_s: float
    """Seconds from the command's start until the server answered its health check."""


@contextlib.contextmanager
def open_review(run_dir: Path, *, reviewer: str = "bench") -> Iterator[ReviewSession]:
    """Open Chromium, then start `fercleaner review RUN_DIR` and wait until it is healthy.

    The browser is up before the command starts (as a user's is), so `started` times the
    command, not Chromium's cold launch.
    """
    from playwright.sync_api import sync_playwright

    from fercleaner.review.launch import find_free_port

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("the browser timing needs Debian's chromium (apt-get install chromium)")
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "fercleaner", "review", str(run_dir), "--port", str(port)]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        server = subprocess.Popen(
            [*command, "--reviewer", reviewer],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_healthy(server, url)
            yield ReviewSession(page, url, started, time.perf_counter() - started)
        finally:
            browser.close()
            with contextlib.suppress(ProcessLookupError):  # it may have exited on its own
                os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)


def _wait_healthy(server: subprocess.Popen, url: str) -> None:
    """Poll the server's health endpoint until it answers (or the server exits)."""
    while True:
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2):
                return
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"fercleaner review exited {server.returncode}") from None
            time.sleep(0.05)
