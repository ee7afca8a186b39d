"""Stall watchdog for the bronze consumer: a worker that holds partitions with records waiting on the broker
but hands none of them to its idle agent is stuck, and it gets itself unstuck without a human.

Faust and aiokafka can leave a consumer that way after a rebalance (seen when a worker took over the
partitions of a SIGKILLed peer: group joined, positions frozen, no error logged). Lag alone cannot tell this
from a busy agent, so the watchdog looks at each partition: records waiting and a landed offset that has not
moved for the timeout (other partitions may keep the agent busy meanwhile; an agent stuck inside one batch
that long is waiting for PostgreSQL, not stalled). It asks the broker for end offsets instead of trusting the
high-water marks the stuck fetcher would have updated.
What is waiting is counted from the offsets landed in PostgreSQL (``ops.stream_offsets``), not from the
group's committed offsets, which Faust can move past records it never delivered.

Escalation, each step after ``SCOUT_CONSUMER_STALL_TIMEOUT_S`` without progress:
1. seek every partition with records waiting back to its landed offset (resets the fetch positions);
2. restart the worker in place (``os.execv``: same pid and arguments, fresh consumer). Offsets are committed
   only after the rows are in PostgreSQL, and landing is idempotent, so a restart redelivers and loses nothing.

Example::

    register_watchdog(app, settings, BronzeActivity(), LandedOffsets(app, resources))
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faust

from observability.metrics import CONSUMER_STALLS
from scout.settings import Settings
from streams.restart import restart_in_place

if TYPE_CHECKING:
    from streams.bronze.landed import LandedOffsets

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
    """Pure decision, per partition: one with records waiting whose landed offset has not moved for
    ``timeout_s`` is stalled (other partitions may keep the agent busy meanwhile), unless the agent is stuck
    inside one batch that long (PostgreSQL down, retrying: not the consumer's fault). One step per timeout."""

    timeout_s: float
    steps_taken: int = 0
    since: dict[Any, tuple[int, float]] = field(default_factory=dict)  # tp -> (landed offset, seen there since)

    def observe(self, now: float, behind: Mapping[Any, int], activity: BronzeActivity,
                rebalancing: bool) -> tuple[str, list[Any]] | None:
        """``behind``: {partition: landed offset} of the partitions with records waiting. Returns ("seek" or
        "restart", the stalled partitions) when that step is due, else None."""
        if rebalancing:
            self.since.clear()
            self.steps_taken = 0
            return None
        self.since = {tp: seen for tp, seen in self.since.items() if tp in behind and seen[0] == behind[tp]}
        for tp, landed in behind.items():
            self.since.setdefault(tp, (landed, now))
        stalled = sorted((tp for tp, (_, t) in self.since.items() if now - t >= self.timeout_s), key=repr)
        if not stalled:
            self.steps_taken = 0
            return None
        if activity.busy and now - activity.last_events >= self.timeout_s:
            return None
        oldest = min(self.since[tp][1] for tp in stalled)
        if int((now - oldest) // self.timeout_s) > self.steps_taken:
            self.steps_taken += 1
            return ("seek" if self.steps_taken == 1 else "restart"), stalled
        return None


def waiting_records(end: Mapping[Any, int], landed: Mapping[Any, int | None]) -> dict[Any, int]:
    """Partitions whose broker holds records past what is landed, with the landed offset (a partition with no
    landed offset yet is left out: its first delivery is what the worker has not done yet either way)."""
    return {tp: int(start) for tp, last in end.items()
            if (start := landed.get(tp)) is not None and int(last) > int(start)}


def register_watchdog(app: faust.App, settings: Settings, activity: BronzeActivity, landed: LandedOffsets) -> None:
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
            await landed.track(tps)  # a partition that never got a batch is watched too
            end = await asyncio.wait_for(consumer.highwaters(*tps), END_OFFSETS_TIMEOUT_S)
            done = await asyncio.wait_for(landed.next_offsets(tps), END_OFFSETS_TIMEOUT_S)
        except Exception as exc:  # the broker or the database may be down: that is not a stall of this consumer
            log.info("watchdog: offsets not read (%r)", exc)
            return
        behind = waiting_records(end, done)
        decision = detector.observe(time.monotonic(), behind, activity, app.rebalancing)
        if decision is None:
            return
        step, stalled = decision
        waiting = sum(int(end[tp]) - behind[tp] for tp in stalled)
        CONSUMER_STALLS.labels(step).inc()
        if step == "seek":
            log.error("watchdog: bronze consumer stalled: %d record(s) waiting on partitions %s, none landed for "
                      "%.0f s; seeking back to the landed offsets", waiting, [tp.partition for tp in stalled],
                      settings.consumer_stall_timeout_s)
            for tp in stalled:
                await consumer.seek(tp, behind[tp])
            return
        log.critical("watchdog: bronze consumer still stalled after a seek (%d record(s) waiting); restarting "
                     "this worker in place", waiting)
        restart_in_place()

    del consumer_watchdog
