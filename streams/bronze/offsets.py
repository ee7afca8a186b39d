"""Where bronze stands on each partition, kept in PostgreSQL (``ops.stream_offsets``): the only truth of what
landed, with an epoch that fences workers that lost a partition.

The protocol, per partition:
- on assignment, before any fetch, ``claim`` creates a missing row (at the group's committed offset on a first
  start, else the broker's earliest offset), bumps the epoch and returns the next offset to land;
- ``start_position`` checks it against the broker's range: below the earliest offset, retention deleted
  records before they landed (reported, then skipped); above the end, the topic was recreated (refused);
- every landing transaction ends by locking the batch's partitions (``check_fence``) and moves ``next_offset``
  only while epoch and offset are still those it holds (``advance``); otherwise it rolls back.

Example::

    owned = await claim(conn, "pos.transactions.v1", {0: 0, 1: 0}, owner="host:123")   # {0: Owned(17, 4), ...}
    start = start_position(owned[0].next_offset, earliest=0, end=40)                     # Start(17, expired=None)
    async with conn.transaction():
        ...                                                                              # rows, dead letters
        await check_fence(conn, topic, [Move(0, epoch=4, expected=17, next_offset=40)])  # raises Fenced
        await advance(conn, topic, moves)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from psycopg import AsyncConnection

from scout.db import q
from streams.bronze.errors import Fenced, TopicRecreated


@dataclass(frozen=True)
class Owned:
    """A partition this worker holds: the next offset to land and the epoch it claimed."""

    next_offset: int
    epoch: int


@dataclass(frozen=True)
class Move:
    """What one landing does on one partition: from ``expected`` to ``next_offset``, under ``epoch``."""

    partition: int
    epoch: int
    expected: int
    next_offset: int


@dataclass(frozen=True)
class Start:
    """Where a claimed partition starts reading; ``expired`` is the range retention deleted before it landed."""

    offset: int
    expired: tuple[int, int] | None = None  # first, last (inclusive)


def start_position(next_offset: int, *, earliest: int, end: int, topic: str = "", partition: int = 0) -> Start:
    """Pure: clamp the landed offset to the broker's range [earliest, end]."""
    if next_offset > end:
        raise TopicRecreated(topic=topic, partition=partition, landed=next_offset, end=end)
    if next_offset < earliest:
        return Start(earliest, (next_offset, earliest - 1))
    return Start(next_offset)


def fenced(moves: Sequence[Move], found: Mapping[int, tuple[int, int]]) -> list[int]:
    """Pure: the partitions of ``moves`` whose row (``found``: partition -> (next offset, epoch)) no longer
    matches what the landing expects."""
    return [m.partition for m in moves if found.get(m.partition) != (m.expected, m.epoch)]


async def known(conn: AsyncConnection, topic: str, partitions: Iterable[int]) -> dict[int, Owned]:
    cur = await conn.execute(q("stream_offsets_get"), {"topic": topic, "partitions": sorted(partitions)})
    return {int(p): Owned(int(o), int(e)) for p, o, e in await cur.fetchall()}


async def claim(conn: AsyncConnection, topic: str, first_offsets: Mapping[int, int], *, owner: str
                ) -> dict[int, Owned]:
    """In one transaction: rows for partitions never seen (at ``first_offsets``), a new epoch for every one."""
    partitions = sorted(first_offsets)
    async with conn.transaction():
        await conn.execute(q("stream_offsets_create"), {"topic": topic, "partitions": partitions,
                                                        "offsets": [first_offsets[p] for p in partitions]})
        cur = await conn.execute(q("stream_offsets_claim"), {"topic": topic, "partitions": partitions,
                                                             "owner": owner})
        return {int(p): Owned(int(o), int(e)) for p, o, e in await cur.fetchall()}


async def check_fence(conn: AsyncConnection, topic: str, moves: Sequence[Move]) -> None:
    """Inside the landing transaction, before ``advance``: lock the partitions (one order) and raise ``Fenced``
    if one moved on."""
    cur = await conn.execute(q("stream_offsets_fence"), {"topic": topic,
                                                         "partitions": sorted(m.partition for m in moves)})
    found = {int(p): (int(o), int(e)) for p, o, e in await cur.fetchall()}
    lost = fenced(moves, found)
    if lost:
        raise Fenced(topic=topic, partitions=lost, found={p: found.get(p) for p in lost})


async def advance(conn: AsyncConnection, topic: str, moves: Sequence[Move]) -> None:
    """Inside the landing transaction, last: the partitions' new next offsets."""
    moving = [m for m in moves if m.next_offset != m.expected]
    if moving:
        await conn.execute(q("stream_offsets_advance"), {"topic": topic,
                                                         "partitions": [m.partition for m in moving],
                                                         "offsets": [m.next_offset for m in moving]})


async def reset(conn: AsyncConnection, topic: str, offsets: Mapping[int, int]) -> None:
    """Start partitions over at ``offsets`` under a new epoch (a topic recreated on purpose)."""
    await conn.execute(q("stream_offsets_reset"), {"topic": topic, "partitions": list(offsets),
                                                   "offsets": list(offsets.values())})
