"""An always-on UAT feed: simulated transactions (with faults) published at a rate until stopped.

The process that runs it passes ``publish`` (e.g. the API's Kafka publisher); events carry source
``simulator``. Bodies that break the contract (malformed JSON, missing fields) are counted as rejected,
as the API would answer them 422.

Example::

    feed = Feed(publisher.publish)
    feed.start(FeedParams(rate=20, seed=1, faults="bad_total=0.01"))
    feed.status()   # {"running": True, "published": 113, ...}
    await feed.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from scout.contract import Envelope, Transaction
from simulator.faults import FaultPlan
from simulator.generator import Generator

log = logging.getLogger(__name__)


class FeedRunning(RuntimeError):
    """A feed is already running; stop it first."""


@dataclass(frozen=True)
class FeedParams:
    rate: float
    seed: int
    faults: str = ""
    duration_s: float | None = None
    clock: Literal["live", "simulated"] = "live"  # live: stamped now, at real time; simulated: from 2026-01-05


@dataclass
class FeedCounts:
    transactions: int = 0
    published: int = 0
    rejected: int = 0
    errors: int = 0


class Feed:
    """At most one feed at a time in this process: ``start``, ``stop``, ``status``."""

    def __init__(self, publish: Callable[[Envelope], Awaitable[Any]]) -> None:
        self._publish = publish
        self._task: asyncio.Task[None] | None = None
        self._params: FeedParams | None = None
        self._counts = FeedCounts()
        self._started_at: datetime | None = None
        self._started: float = 0.0
        self._stopped: float | None = None
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, params: FeedParams) -> None:
        if self.running:
            raise FeedRunning("a simulator feed is already running; stop it first")
        plan = FaultPlan.parse(params.faults, seed=params.seed)  # ValueError on a bad plan, before starting
        self._params, self._counts, self.last_error = params, FeedCounts(), None
        self._started_at, self._started, self._stopped = datetime.now(UTC), time.monotonic(), None
        self._task = asyncio.create_task(self._run(params, plan))

    async def stop(self) -> bool:
        """Stop the feed; False when none was running."""
        if not self.running:
            return False
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return True

    def status(self) -> dict[str, Any]:
        end = self._stopped if self._stopped is not None else time.monotonic()
        elapsed = end - self._started if self._started_at else 0.0
        return {"running": self.running, "params": asdict(self._params) if self._params else None,
                "started_at": self._started_at, "elapsed_s": round(elapsed, 1), **asdict(self._counts),
                "achieved_rate": round(self._counts.transactions / elapsed, 1) if elapsed else 0.0,
                "last_error": self.last_error}

    async def _run(self, params: FeedParams, plan: FaultPlan) -> None:
        gen = Generator.live(params.seed, rate=params.rate) if params.clock == "live" else Generator(params.seed)
        n = 0
        try:
            while params.duration_s is None or time.monotonic() - self._started < params.duration_s:
                delay = self._started + n / params.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent, _ = plan.apply(n, gen.transaction(n), gen)
                for s in sent:
                    await self._send(s.body)
                self._counts.transactions += 1
                n += 1
        finally:
            self._stopped = time.monotonic()

    async def _send(self, body: dict[str, Any] | bytes) -> None:
        try:
            tx = (Transaction.model_validate_json(body) if isinstance(body, bytes)
                  else Transaction.model_validate(body))
        except ValidationError:
            self._counts.rejected += 1
            return
        try:
            await self._publish(Envelope.wrap(tx, source="simulator"))
            self._counts.published += 1
        except Exception as exc:  # counted and shown in status; the feed keeps its pace
            self._counts.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("simulator feed: publish failed (transaction_id=%s): %r", tx.transaction_id, exc)
