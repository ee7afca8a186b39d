"""ops.stream_offsets on real PostgreSQL: landing moves a tracked partition's next offset in the same
transaction as the rows, never past a record that is not there; holes are reported; partitions start at the
broker's earliest offset and start over when the broker is behind (a recreated topic)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from streams.bronze.decode import DeadLetter, Position
from streams.bronze.offsets import PartitionStart, start_partitions
from streams.bronze.sink import LandResult, land
from tests.factories import bronze_row, tx_dict


async def _land(dsn: str, rows: list[Any], dead: list[DeadLetter], positions: list[Position] | None = None
                ) -> LandResult:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await land(conn, rows, dead, positions)


async def _start(dsn: str, found: dict[int, PartitionStart], topic: str = "t") -> dict[int, int]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await start_partitions(conn, topic, found)


def _next(dsn: str, topic: str = "t") -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT kafka_partition, next_offset FROM ops.stream_offsets WHERE kafka_topic = %s",
                            (topic,)).fetchall()
    return {int(p): int(o) for p, o in rows}


def _rows(first: int, count: int) -> list[Any]:
    return [bronze_row(tx_dict(n), offset=n) for n in range(first, first + count)]


def test_landing_moves_a_tracked_partition_through_its_batches(database: str) -> None:
    asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=100)}))
    assert _next(database) == {0: 0}
    first = asyncio.run(_land(database, _rows(0, 20), []))
    again = asyncio.run(_land(database, _rows(10, 20), []))  # a redelivery overlapping the first batch
    assert first.holes == again.holes == []
    assert _next(database) == {0: 30}


def test_a_batch_past_the_landed_offset_lands_but_reports_the_hole_and_the_offset_waits(database: str) -> None:
    asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=100)}))
    asyncio.run(_land(database, _rows(0, 10), []))
    result = asyncio.run(_land(database, _rows(25, 10), []))  # 10..24 never reached the agent
    assert result.inserted == 10
    assert [(h.partition, h.next_offset, h.seen) for h in result.holes] == [(0, 10, 25)]
    assert _next(database) == {0: 10}
    mended = asyncio.run(_land(database, _rows(10, 25), []))  # the agent sought back: 10..34 again
    assert mended.holes == []
    assert (mended.inserted, mended.duplicates) == (15, 10)
    assert _next(database) == {0: 35}


def test_dead_letters_count_as_handled_offsets(database: str) -> None:
    asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=100)}))
    dead = [DeadLetter(b"k", b"not json", "not JSON: bad", Position("t", 0, 3))]
    rows = [r for r in _rows(0, 6) if r.position.offset != 3]
    result = asyncio.run(_land(database, rows, dead))
    assert result.holes == []
    assert _next(database) == {0: 6}


def test_a_batch_landed_in_pieces_moves_the_offset_only_with_its_last_piece(database: str) -> None:
    asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=100)}))
    rows = _rows(0, 5)
    for row in rows:  # what the agent does when the database refuses the whole batch: row by row
        asyncio.run(_land(database, [row], [], []))
        assert _next(database) == {0: 0}
    last = asyncio.run(_land(database, [], [], [r.position for r in rows]))
    assert last.holes == []
    assert _next(database) == {0: 5}


def test_a_partition_that_is_not_tracked_is_left_alone(database: str) -> None:
    result = asyncio.run(_land(database, _rows(50, 5), []))
    assert result.holes == []
    assert _next(database) == {}


def test_a_partition_starts_at_the_earliest_offset_and_a_tracked_one_keeps_its_place(database: str) -> None:
    assert asyncio.run(_start(database, {0: PartitionStart(earliest=7, end=100), 1: PartitionStart(0, 0)})) == {}
    asyncio.run(_land(database, _rows(7, 3), []))
    assert asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=100)})) == {}
    assert _next(database) == {0: 10, 1: 0}


def test_a_partition_landed_past_the_brokers_end_starts_over_at_its_earliest_offset(database: str) -> None:
    asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=100)}))
    asyncio.run(_land(database, _rows(0, 40), []))
    # the broker now ends at 5: the topic was recreated (or an in-memory broker restarted)
    assert asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=5)})) == {0: 40}
    assert _next(database) == {0: 0}


def test_two_landings_of_the_same_partition_at_once_leave_the_furthest_offset(database: str) -> None:
    asyncio.run(_start(database, {0: PartitionStart(earliest=0, end=1000)}))

    async def both() -> None:
        await asyncio.gather(_land(database, _rows(0, 300), []), _land(database, _rows(0, 200), []))

    asyncio.run(both())
    assert _next(database) == {0: 300}
