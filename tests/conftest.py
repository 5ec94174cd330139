"""Test-wide setup: every test gets its own image cache dir and deterministic torch."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep decoded-image caches out of the user's home directory."""
    monkeypatch.setenv("FERCLEANER_CACHE", str(tmp_path_factory.mktemp("cache")))
