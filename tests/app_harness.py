"""Shared helpers for the `AppTest` suites: a generated run, the app script, store read-back."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_fixtures import make_run
from streamlit.testing.v1 import AppTest

from fercleaner.app import keys
from fercleaner.review.store import DecisionStore

APP = str(Path(__file__).resolve().parents[1] / "app" / "streamlit_app.py")


def sid(i: int) -> str:
    """The sample id `make_run` gives its i-th image."""
    return f"img/face_{i:05d}.png"


def open_run_for_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Generate a run and point the app at it, reviewing as 'ann'."""
    run = make_run(tmp_path)
    monkeypatch.setenv(keys.ENV_RUN_DIR, str(run))
    monkeypatch.setenv(keys.ENV_REVIEWER, "ann")
    return run


def start() -> AppTest:
    """Run the app script once and fail on any exception it raised."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def current(at: AppTest) -> str | None:
    """The sample the queue shows now."""
    return at.session_state[keys.CURRENT]


def decisions(run_dir: Path) -> dict[str, tuple]:
    """Current decisions read back from the store on disk (never from session state)."""
    with DecisionStore(run_dir / "review.sqlite") as store:
        frame = store.current_decisions()
    return {
        r.sample_id: (r.action, r.label, r.reviewer, r.note, r.soft_label)
        for r in frame.itertuples()
    }
