"""Where bronze stands on each partition, kept in PostgreSQL (``ops.stream_offsets``), and the holes a batch shows.

A partition's ``next_offset`` is the first offset after an unbroken run of records that are in PostgreSQL
(landed, recognised as duplicates, or dead-lettered). It moves in the landing transaction, so it never
claims a record that is not there. The topic is written by idempotent, non-transactional producers, so its
offsets have no holes: a batch that starts past ``next_offset`` means records the consumer never handed to
the agent. Faust can do that around a rebalance (it drops records it believes it read, and counts skipped
ranges as done, so the group's committed offset moves past them); the agent then seeks back to
``next_offset``. The group's committed offsets are only where a worker starts reading; this table decides
what is done.

Example::

    async with conn.transaction():
        ...                                                      # land the rows
        holes = await record_positions(conn, positions)          # [Hole(topic, partition, next_offset, ...)]
    tracker.observe(hole, time.monotonic())                      # "seek", "restart" or None
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from psycopg import AsyncConnection

from scout.db import q
from streams.bronze.decode import Position


@dataclass(frozen=True)
class Hole:
    """Records of ``topic``/``partition`` from ``next_offset`` up to ``seen`` (excluded) are not in PostgreSQL."""

    topic: str
    partition: int
    next_offset: int
    seen: int


def extend(next_offset: int, offsets: Iterable[int]) -> tuple[int, int | None]:
    """Move ``next_offset`` through the offsets that continue it; returns the new next offset and the first
    offset found past a hole (None when there is none). Offsets below ``next_offset`` are redeliveries."""
    current = next_offset
    for offset in sorted(set(offsets)):
        if offset < current:
            continue
        if offset > current:
            return current, offset
        current += 1
    return current, None


async def record_positions(conn: AsyncConnection, positions: Iterable[Position]) -> list[Hole]:
    """In the landing transaction: advance each tracked partition through the batch's offsets; the holes.

    Partitions without a row are not tracked yet (``start_partitions`` adds them) and are left alone.
    """
    by_topic: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for position in positions:
        by_topic[position.topic][position.partition].append(position.offset)
    holes: list[Hole] = []
    for topic, partitions in by_topic.items():
        cur = await conn.execute(q("stream_offsets_lock"), {"topic": topic, "partitions": sorted(partitions)})
        known = {int(p): int(o) for p, o in await cur.fetchall()}
        moved: dict[int, int] = {}
        for partition, offsets in partitions.items():
            if partition not in known:
                continue
            new, past = extend(known[partition], offsets)
            if new != known[partition]:
                moved[partition] = new
            if past is not None:
                holes.append(Hole(topic, partition, new, past))
        if moved:
            await conn.execute(q("stream_offsets_set"), {"topic": topic, "partitions": list(moved),
                                                         "offsets": list(moved.values())})
    return holes


@dataclass(frozen=True)
class PartitionStart:
    earliest: int  # first offset still on the broker
    end: int  # the broker's end offset (next offset it will write)


async def start_partitions(conn: AsyncConnection, topic: str, found: Mapping[int, PartitionStart]) -> dict[int, int]:
    """Track partitions this worker got: a new one starts at its earliest offset on the broker; one whose
    recorded next offset is past the broker's end (the topic was recreated, or an in-memory broker restarted)
    starts over at its earliest offset. Returns the partitions started over, with the offset they had."""
    cur = await conn.execute(q("stream_offsets_get"), {"topic": topic, "partitions": list(found)})
    known = {int(p): int(o) for p, o in await cur.fetchall()}
    fresh = {p: s.earliest for p, s in found.items() if p not in known}
    reset = {p: known[p] for p, s in found.items() if p in known and known[p] > s.end}
    if fresh:
        await conn.execute(q("stream_offsets_start"), {"topic": topic, "partitions": list(fresh),
                                                       "offsets": list(fresh.values())})
    if reset:
        await conn.execute(q("stream_offsets_reset"), {"topic": topic, "partitions": list(reset),
                                                       "offsets": [found[p].earliest for p in reset]})
    return reset


async def skip_to(conn: AsyncConnection, topic: str, partition: int, offset: int) -> None:
    """Records before ``offset`` are gone from the broker (retention): stop waiting for them."""
    await conn.execute(q("stream_offsets_set"), {"topic": topic, "partitions": [partition], "offsets": [offset]})


async def next_offsets(conn: AsyncConnection, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    cur = await conn.execute(q("stream_offsets_get"), {"topic": topic, "partitions": list(partitions)})
    return {int(p): int(o) for p, o in await cur.fetchall()}


@dataclass
class HoleTracker:
    """What to do about a hole: seek back at once; if the same hole is still there ``retry_s`` later, seek again;
    after ``max_seeks`` seeks, restart the worker (a fresh consumer starts from the committed offsets and the
    first batch shows the hole again, with no stale fetch in the way)."""

    retry_s: float = 5.0
    max_seeks: int = 3
    _seen: dict[tuple[str, int], tuple[int, int, float]] = field(default_factory=dict)

    def observe(self, hole: Hole, now: float) -> str | None:
        key = (hole.topic, hole.partition)
        entry = self._seen.get(key)
        if entry is None or entry[0] != hole.next_offset:
            self._seen[key] = (hole.next_offset, 1, now)
            return "seek"
        offset, seeks, last = entry
        if now - last < self.retry_s:
            return None
        if seeks >= self.max_seeks:
            return "restart"
        self._seen[key] = (offset, seeks + 1, now)
        return "seek"
