"""Retry an async operation on transient errors with capped exponential backoff, forever.

Terminal errors are raised to the caller, which routes the record; transient ones never escape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from observability.metrics import STAGE_RETRIES
from scout.errors import backoff_delays, classify

T = TypeVar("T")
log = logging.getLogger(__name__)


async def retry_transient(op: Callable[[], Awaitable[T]], *, stage: str, max_backoff: float) -> T:
    for delay in backoff_delays(cap=max_backoff):
        try:
            return await op()
        except Exception as exc:
            if classify(exc) == "terminal":
                raise
            STAGE_RETRIES.labels(stage).inc()
            log.warning("%s: transient error, retrying in %.1fs: %r", stage, delay, exc)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
