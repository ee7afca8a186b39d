"""Shared test helpers: waiting on a condition with a deadline (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T], *, until: Callable[[T], bool], timeout: float, what: str,
               interval: float = 0.2) -> T:
    """Call ``probe`` until ``until(result)`` holds; fail with the last result after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {result!r}")
        time.sleep(interval)
