"""Stall watchdog for the bronze consumer: a worker that holds partitions with records waiting on the broker
but hands none of them to its idle agent is stuck, and it gets itself unstuck without a human.

Faust and aiokafka can leave a consumer that way after a rebalance (seen when a worker took over the
partitions of a SIGKILLed peer: group joined, positions frozen, no error logged). Lag alone cannot tell this
from a busy agent, so the watchdog only counts time while the agent waits for events, and it asks the
broker for end offsets instead of trusting the high-water marks the stuck fetcher would have updated.

Escalation, each step after ``SCOUT_CONSUMER_STALL_TIMEOUT_S`` without progress:
1. seek every assigned partition back to its committed offset (resets the fetch positions);
2. restart the worker in place (``os.execv``: same pid and arguments, fresh consumer). Offsets are committed
   only after the rows are in PostgreSQL, and landing is idempotent, so a restart redelivers and loses nothing.

Example::

    register_watchdog(app, settings, BronzeActivity())
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import faust

from observability.metrics import CONSUMER_STALLS
from scout.settings import Settings

log = logging.getLogger(__name__)
END_OFFSETS_TIMEOUT_S = 10.0


@dataclass
class BronzeActivity:
    """What the bronze agent tells the watchdog: whether it is inside a batch, and when it last got events."""

    busy: bool = False
    last_events: float = field(default_factory=time.monotonic)

    def batch_started(self) -> None:
        self.busy = True
        self.last_events = time.monotonic()

    def batch_done(self) -> None:
        self.busy = False
        self.last_events = time.monotonic()


@dataclass
class StallDetector:
    """Pure decision: given waiting records and the agent's activity, which step is due (one per timeout)."""

    timeout_s: float
    steps_taken: int = 0

    def observe(self, now: float, waiting: int, activity: BronzeActivity, rebalancing: bool) -> str | None:
        """Returns "seek" or "restart" when that step is due, else None."""
        idle_for = now - activity.last_events
        if waiting <= 0 or activity.busy or rebalancing or idle_for < self.timeout_s:
            self.steps_taken = 0
            return None
        if int(idle_for // self.timeout_s) > self.steps_taken:
            self.steps_taken += 1
            return "seek" if self.steps_taken == 1 else "restart"
        return None


def waiting_records(end: Mapping[Any, int], committed: Mapping[Any, int | None]) -> int:
    """Records on the broker past what the group committed (a partition never committed counts as 0 here:
    its first delivery is what the group has not done yet either way)."""
    total = 0
    for tp, last in end.items():
        start = committed.get(tp)
        if start is not None:
            total += max(int(last) - int(start), 0)
    return total


def restart_in_place() -> None:
    """Replace this process with a fresh run of the same command (same pid: supervisors keep tracking it)."""
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def register_watchdog(app: faust.App, settings: Settings, activity: BronzeActivity) -> None:
    if settings.consumer_stall_timeout_s <= 0:
        return
    detector = StallDetector(settings.consumer_stall_timeout_s)

    @app.timer(interval=min(5.0, settings.consumer_stall_timeout_s / 3))
    async def consumer_watchdog() -> None:
        consumer: Any = app.consumer  # Faust keeps the committed offsets in a private mapping
        tps = {tp for tp in consumer.assignment() if tp.topic == settings.topic}
        if not tps or app.rebalancing:
            return
        try:
            end = await asyncio.wait_for(consumer.highwaters(*tps), END_OFFSETS_TIMEOUT_S)
        except Exception as exc:  # the broker may be down: that is not a stall of this consumer
            log.info("watchdog: end offsets not read (%r)", exc)
            return
        waiting = waiting_records(end, consumer._committed_offset)
        step = detector.observe(time.monotonic(), waiting, activity, app.rebalancing)
        if step is None:
            return
        CONSUMER_STALLS.labels(step).inc()
        partitions = sorted(tp.partition for tp in tps)
        if step == "seek":
            log.error("watchdog: bronze consumer stalled: %d record(s) waiting on partitions %s, none delivered "
                      "for %.0f s; seeking back to the committed offsets", waiting, partitions,
                      time.monotonic() - activity.last_events)
            await consumer.perform_seek()
            return
        log.critical("watchdog: bronze consumer still stalled after a seek (%d record(s) waiting); restarting "
                     "this worker in place", waiting)
        restart_in_place()

    del consumer_watchdog
