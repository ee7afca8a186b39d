"""Unit-test fixtures: keep SCOUT_* variables of the caller's shell out of every Settings()."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_scout_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SCOUT_"):
            monkeypatch.delenv(name)
