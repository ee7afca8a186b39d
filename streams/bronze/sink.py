"""Land a batch in ``bronze.transactions`` (COPY to a staging table, INSERT ... ON CONFLICT DO NOTHING).

One database transaction per batch: bronze rows and dead letters commit together or not at all.

Example::

    async with pool.connection() as conn:
        result = await land(conn, rows, dead_letters)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import AsyncConnection

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
            await conn.execute(q("bronze_stage_create"))
            async with conn.cursor() as cur:
                async with cur.copy(q("bronze_stage_copy")) as copy:
                    for row in rows:
                        await copy.write_row(
                            (
                                row.event_hash, row.source, row.store_id, row.transaction_id,
                                row.payload_json, row.received_at, row.position.topic,
                                row.position.partition, row.position.offset,
                            )
                        )
                await cur.execute(q("bronze_insert_from_stage"))
                inserted = max(cur.rowcount, 0)
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
