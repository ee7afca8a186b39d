"""Land a batch in ``bronze.transactions``: COPY straight in when every event is new (the common case),
else COPY to a staging table and INSERT ... ON CONFLICT DO NOTHING.

One database transaction per batch: bronze rows and dead letters commit together or not at all.

Example::

    async with pool.connection() as conn:
        result = await land(conn, rows, dead_letters)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation

from scout.db import q
from streams.bronze.decode import BronzeRow, DeadLetter


@dataclass(frozen=True)
class LandResult:
    received: int
    inserted: int
    duplicates: int
    dead_letters: int


async def land(conn: AsyncConnection, rows: Sequence[BronzeRow], dead: Sequence[DeadLetter]) -> LandResult:
    inserted = 0
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
    return LandResult(len(rows), inserted, len(rows) - inserted, len(dead))


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
