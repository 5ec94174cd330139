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
    """Start `fercleaner review RUN_DIR`, wait until it is healthy, open Chromium on it."""
    from playwright.sync_api import sync_playwright

    from fercleaner.review.launch import find_free_port

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("the browser timing needs Debian's chromium (apt-get install chromium)")
    port = find_free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "fercleaner", "review", str(run_dir), "--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(
        [*command, "--reviewer", reviewer],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(f"fercleaner review exited {server.returncode}") from None
                time.sleep(0.05)
        healthy_s = time.perf_counter() - started
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                yield ReviewSession(page, url, started, healthy_s)
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
