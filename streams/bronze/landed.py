"""The worker's side of ``ops.stream_offsets`` (see offsets.py): start tracking the partitions it gets, read
where each one is landed, and seek back over holes.

Example::

    landed = LandedOffsets(app, resources)
    await landed.track(tps)                  # once per partition and process: where it starts
    await landed.mend(result.holes)          # after a landed batch: seek back (or restart) over holes
    await landed.next_offsets(tps)           # {tp: next offset to land}, for the watchdog
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from observability.metrics import CONSUMER_STALLS
from streams.bronze.offsets import Hole, HoleTracker, PartitionStart, next_offsets, skip_to, start_partitions
from streams.resources import StreamResources
from streams.restart import restart_in_place

log = logging.getLogger(__name__)
BROKER_TIMEOUT_S = 10.0


class LandedOffsets:
    """One per worker, shared by the bronze agent and the watchdog."""

    def __init__(self, app: faust.App, resources: StreamResources) -> None:
        self.app = app
        self.resources = resources
        self.tracked: set[Any] = set()
        self.holes = HoleTracker()

    async def track(self, tps: set[Any]) -> None:
        """Once per partition and process: record where it starts (best effort: retried with the next batch)."""
        new = tps - self.tracked
        if not new:
            return
        consumer: Any = self.app.consumer
        try:
            earliest = await asyncio.wait_for(consumer.earliest_offsets(*new), BROKER_TIMEOUT_S)
            end = await asyncio.wait_for(consumer.highwaters(*new), BROKER_TIMEOUT_S)
            by_topic: dict[str, dict[int, PartitionStart]] = {}
            for tp in new:
                by_topic.setdefault(tp.topic, {})[tp.partition] = PartitionStart(int(earliest[tp]), int(end[tp]))
            pool = await self.resources.pool()
            async with pool.connection() as conn:
                for topic, found in by_topic.items():
                    reset = await start_partitions(conn, topic, found)
                    for partition, had in reset.items():
                        log.warning("bronze: %s[%d] ends at %d on the broker but %d were landed: the topic was "
                                    "recreated; tracking it again from offset %d", topic, partition,
                                    found[partition].end, had, found[partition].earliest)
        except Exception as exc:  # the broker or the database is away: the next batch tries again
            log.info("bronze: partition start offsets not recorded yet (%r)", exc)
            return
        self.tracked |= new

    async def mend(self, holes: list[Hole]) -> None:
        for hole in holes:
            step = self.holes.observe(hole, time.monotonic())
            if step == "restart":
                CONSUMER_STALLS.labels("restart").inc()
                log.critical("bronze: records %d..%d of %s[%d] still missing after seeking back; restarting this "
                             "worker in place", hole.next_offset, hole.seen - 1, hole.topic, hole.partition)
                restart_in_place()
            if step == "seek":
                await self._seek(hole)

    async def _seek(self, hole: Hole) -> None:
        consumer: Any = self.app.consumer
        tp = next((t for t in consumer.assignment() if (t.topic, t.partition) == (hole.topic, hole.partition)), None)
        if tp is None:  # the partition moved to another worker, which checks it itself
            return
        try:
            earliest = int((await asyncio.wait_for(consumer.earliest_offsets(tp), BROKER_TIMEOUT_S))[tp])
            target = hole.next_offset
            if earliest > target:
                CONSUMER_STALLS.labels("expired").inc()
                log.critical("bronze: records %d..%d of %s[%d] were deleted from the broker before they landed "
                             "(retention); they are lost", target, earliest - 1, hole.topic, hole.partition)
                pool = await self.resources.pool()
                async with pool.connection() as conn:
                    await skip_to(conn, hole.topic, hole.partition, earliest)
                target = earliest
            else:
                CONSUMER_STALLS.labels("gap").inc()
                log.error("bronze: records %d..%d of %s[%d] never reached the agent (the batch started at %d); "
                          "seeking back to land them", target, hole.seen - 1, hole.topic, hole.partition, hole.seen)
            await consumer.seek(tp, target)
        except Exception as exc:  # a rebalance or the broker away: the next batch shows the hole again
            log.warning("bronze: seek of %s to %d failed: %r", tp, hole.next_offset, exc)

    async def next_offsets(self, tps: set[Any]) -> dict[Any, int]:
        """The next offset to land on each of ``tps`` that is tracked."""
        pool = await self.resources.pool()
        found: dict[Any, int] = {}
        async with pool.connection() as conn:
            for topic in {tp.topic for tp in tps}:
                mine = {tp.partition: tp for tp in tps if tp.topic == topic}
                for partition, offset in (await next_offsets(conn, topic, mine)).items():
                    found[mine[partition]] = offset
        return found
