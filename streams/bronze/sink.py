"""Land one batch in ``bronze.transactions`` in one database transaction: the rows, the dead letters, the
fence check and the partitions' next offsets commit together or not at all.

Rows go in by COPY when every event is new (the common case), else through a staging table with
an INSERT that skips the hashes already in ``bronze.event_hashes`` (event_hash is unique across every day of the
partitioned table through it). Rows the database refuses are found one by one (savepoints)
and become dead letters in the same transaction, so one bad record can never stop a partition.

Example::

    async with pool.connection() as conn:
        result = await land(conn, rows, dead_letters, topic, [Move(0, epoch=3, expected=120, next_offset=170)])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import AsyncConnection, AsyncCopy
from psycopg.errors import UniqueViolation

from scout.db import q
from scout.errors import classify
from streams.bronze.decode import UNSTORABLE_REASON, BronzeRow, DeadLetter, storable
from streams.bronze.offsets import Move, advance, check_fence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LandResult:
    received: int
    inserted: int
    duplicates: int
    dead_letters: list[DeadLetter]


async def land(conn: AsyncConnection, rows: Sequence[BronzeRow], dead: Sequence[DeadLetter], topic: str = "",
               moves: Sequence[Move] = (), copy_data: bytes | None = None) -> LandResult:
    """Land rows and dead letters; with ``moves``, fenced and recorded in ``ops.stream_offsets`` (raises
    ``Fenced``, rolling everything back, when a partition is no longer this worker's). ``copy_data``: the rows
    already in COPY's text format (``batch.encode``), written in one piece."""
    async with conn.transaction():
        inserted, refused = await _insert_rows(conn, rows, copy_data)
        letters = [*dead, *refused]
        if letters:
            await _insert_dead(conn, letters)
        if moves:  # last, so the partitions' rows are locked only for the end of the transaction
            await check_fence(conn, topic, moves)
            await advance(conn, topic, moves)
    landed = len(rows) - len(refused)
    return LandResult(len(rows), inserted, landed - inserted, letters)


def _values(row: BronzeRow) -> tuple[object, ...]:
    return (row.event_hash, row.source, row.store_id, row.transaction_id, row.payload_json, row.received_at,
            row.position.topic, row.position.partition, row.position.offset)


async def _insert_rows(conn: AsyncConnection, rows: Sequence[BronzeRow],
                       copy_data: bytes | None = None) -> tuple[int, list[DeadLetter]]:
    """The rows inserted, and the rows the database refused (as dead letters)."""
    if not rows:
        return 0, []
    try:
        async with conn.transaction():
            copied = await _copy_new(conn, rows, copy_data)
            return (copied if copied is not None else await _insert_via_stage(conn, rows, copy_data)), []
    except Exception as exc:
        if classify(exc) == "transient":
            raise
        log.error("bronze: batch of %d refused by the database (%r); landing row by row", len(rows), exc)
    inserted, refused = 0, []
    for row in rows:
        try:
            async with conn.transaction():
                inserted += await _insert_via_stage(conn, [row])
        except Exception as exc:
            if classify(exc) == "transient":
                raise
            reason = storable(f"refused by database: {type(exc).__name__}: {exc}")
            refused.append(DeadLetter(None, row.payload_json.encode(), reason, row.position))
    return inserted, refused


async def _write(copy: AsyncCopy, rows: Sequence[BronzeRow], copy_data: bytes | None) -> None:
    if copy_data is not None:
        await copy.write(copy_data)
        return
    for row in rows:
        await copy.write_row(_values(row))


async def _copy_new(conn: AsyncConnection, rows: Sequence[BronzeRow], copy_data: bytes | None = None) -> int | None:
    """COPY straight into bronze (in a savepoint); ``None`` when an event is already landed (a redelivery,
    a duplicate): then the stage path takes the batch."""
    if len({row.event_hash for row in rows}) != len(rows):
        return None
    try:
        async with conn.transaction(), conn.cursor() as cur, cur.copy(q("bronze_copy")) as copy:
            await _write(copy, rows, copy_data)
    except UniqueViolation:
        return None
    return len(rows)


async def _insert_via_stage(conn: AsyncConnection, rows: Sequence[BronzeRow], copy_data: bytes | None = None) -> int:
    """COPY into the session's stage, then INSERT the events not landed yet (any day) in offset order."""
    await conn.execute(q("bronze_stage_create"))
    async with conn.cursor() as cur:
        async with cur.copy(q("bronze_stage_copy")) as copy:
            await _write(copy, rows, copy_data)
        await cur.execute(q("bronze_insert_from_stage"))
        return max(cur.rowcount, 0)


def _dead_params(letter: DeadLetter, reason: str) -> dict[str, object]:
    return {"topic": letter.position.topic, "partition": letter.position.partition,
            "offset": letter.position.offset, "key": letter.key, "raw": letter.raw, "reason": reason}


async def _insert_dead(conn: AsyncConnection, letters: Sequence[DeadLetter]) -> None:
    """Dead letters with storable reasons; one the database still refuses is kept with a constant reason."""
    try:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(q("dead_letter_insert"), [_dead_params(d, storable(d.reason)) for d in letters])
        return
    except Exception as exc:
        if classify(exc) == "transient":
            raise
        log.error("bronze: dead letters refused (%r); storing them one by one", exc)
    for letter in letters:
        try:
            async with conn.transaction():
                await conn.execute(q("dead_letter_insert"), _dead_params(letter, storable(letter.reason)))
        except Exception as exc:
            if classify(exc) == "transient":
                raise
            async with conn.transaction():
                await conn.execute(q("dead_letter_insert"), _dead_params(letter, UNSTORABLE_REASON))
