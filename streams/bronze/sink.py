"""Land a batch in ``bronze.transactions``: COPY straight in when every event is new (the common case),
else COPY to a staging table and INSERT ... ON CONFLICT DO NOTHING.

One database transaction per batch: bronze rows, dead letters and the partitions' landed offsets
(``ops.stream_offsets``, see offsets.py) commit together or not at all.

Example::

    async with pool.connection() as conn:
        result = await land(conn, rows, dead_letters)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation

from scout.db import q
from streams.bronze.decode import BronzeRow, DeadLetter, Position
from streams.bronze.offsets import Hole, record_positions


@dataclass(frozen=True)
class LandResult:
    received: int
    inserted: int
    duplicates: int
    dead_letters: int
    holes: list[Hole] = field(default_factory=list)


async def land(conn: AsyncConnection, rows: Sequence[BronzeRow], dead: Sequence[DeadLetter],
               positions: Iterable[Position] | None = None) -> LandResult:
    """Land rows and dead letters; ``positions`` (default: theirs) are recorded as handled on their partitions.

    A caller landing one batch in pieces passes ``positions=()`` for all pieces but the last, which gets the
    batch's positions, so a partition's recorded offset never passes a record still to come."""
    inserted = 0
    if positions is None:
        positions = [r.position for r in rows] + [d.position for d in dead]
    async with conn.transaction():
        if rows:
            copied = await _copy_new(conn, rows)
            inserted = copied if copied is not None else await _insert_via_stage(conn, rows)
        if dead:
            async with conn.cursor() as cur:
                await cur.executemany(
                    q("dead_letter_insert"),
                    [
                        {
                            "topic": d.position.topic, "partition": d.position.partition,
                            "offset": d.position.offset, "key": d.key, "raw": d.raw, "reason": d.reason,
                        }
                        for d in dead
                    ],
                )
        holes = await record_positions(conn, positions)
    return LandResult(len(rows), inserted, len(rows) - inserted, len(dead), holes)


def _values(row: BronzeRow) -> tuple[object, ...]:
    return (row.event_hash, row.source, row.store_id, row.transaction_id, row.payload_json, row.received_at,
            row.position.topic, row.position.partition, row.position.offset)


async def _copy_new(conn: AsyncConnection, rows: Sequence[BronzeRow]) -> int | None:
    """The common case, a batch of new events: COPY straight into bronze (in a savepoint). ``None`` when
    the batch holds an event already landed (a redelivery, a duplicate): then it takes the stage path."""
    if len({row.event_hash for row in rows}) != len(rows):
        return None
    try:
        async with conn.transaction(), conn.cursor() as cur, cur.copy(q("bronze_copy")) as copy:
            for row in rows:
                await copy.write_row(_values(row))
    except UniqueViolation:
        return None
    return len(rows)


async def _insert_via_stage(conn: AsyncConnection, rows: Sequence[BronzeRow]) -> int:
    """COPY into the session's stage, then INSERT ... ON CONFLICT (event_hash) DO NOTHING in offset order."""
    await conn.execute(q("bronze_stage_create"))
    async with conn.cursor() as cur:
        async with cur.copy(q("bronze_stage_copy")) as copy:
            for row in rows:
                await copy.write_row(_values(row))
        await cur.execute(q("bronze_insert_from_stage"))
        return max(cur.rowcount, 0)
