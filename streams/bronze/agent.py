"""The bronze Faust agent: batches from the transactions topic into ``bronze.transactions``.

Offsets are acknowledged by Faust only when the loop asks for the next batch, i.e. after the
database commit below: a crash before the commit redelivers the batch, and the idempotent insert
(UNIQUE event_hash) makes the redelivery harmless. No exception may escape the loop (Faust would
ack the batch), so transient errors are retried without end and terminal ones are routed.

Faust's own bookkeeping is not trusted to be complete: each partition's landed offset is kept in
PostgreSQL with the rows (offsets.py), and a batch that starts past it makes the agent seek back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import faust

from observability.metrics import DEAD_LETTERS, STAGE_BATCH_SECONDS, STAGE_BATCH_SIZE, STAGE_ROWS
from scout.errors import classify
from streams.bronze.decode import BronzeRow, DeadLetter, Position, decode
from streams.bronze.landed import LandedOffsets
from streams.bronze.sink import LandResult, land
from streams.resources import StreamResources
from streams.retry import retry_transient
from streams.watchdog import BronzeActivity

log = logging.getLogger(__name__)
EXIT_UNPERSISTED = 75  # the process exits rather than let Faust commit an unpersisted batch


def split(events: Sequence[Any]) -> tuple[list[BronzeRow], list[DeadLetter]]:
    rows: list[BronzeRow] = []
    dead: list[DeadLetter] = []
    for event in events:
        message = event.message
        position = Position(message.topic, message.partition, message.offset)
        result = decode(event.value, key=message.key, position=position)
        (rows if isinstance(result, BronzeRow) else dead).append(result)  # type: ignore[arg-type]  # mypy does not narrow per branch
    return rows, dead


async def persist(resources: StreamResources, rows: list[BronzeRow], dead: list[DeadLetter]) -> LandResult:
    """Land the batch; isolate rows the database refuses (terminal) as dead letters."""
    settings = resources.settings

    async def attempt(batch: list[BronzeRow], letters: list[DeadLetter],
                      positions: list[Position] | None = None) -> LandResult:
        pool = await resources.pool()
        async with pool.connection() as conn:
            return await land(conn, batch, letters, positions)

    try:
        return await retry_transient(lambda: attempt(rows, dead), stage="bronze",
                                     max_backoff=settings.retry_max_backoff_s)
    except Exception as exc:
        log.error("bronze: batch of %d refused (%r); landing row by row", len(rows), exc)
    positions = [r.position for r in rows] + [d.position for d in dead]  # recorded with the last piece
    inserted = duplicates = 0
    for row in rows:
        try:
            one = await retry_transient(lambda r=row: attempt([r], [], []), stage="bronze",  # type: ignore[misc]  # a lambda binding row by default
                                        max_backoff=settings.retry_max_backoff_s)
            inserted += one.inserted
            duplicates += one.duplicates
        except Exception as exc:
            reason = f"refused by database: {type(exc).__name__}: {exc}"[:500]
            dead.append(DeadLetter(None, row.payload_json.encode(), reason, row.position))
    last = await retry_transient(lambda: attempt([], dead, positions), stage="bronze",
                                 max_backoff=settings.retry_max_backoff_s)
    return LandResult(len(rows), inserted, duplicates, len(dead), last.holes)


async def persist_shielded(resources: StreamResources, rows: list[BronzeRow], dead: list[DeadLetter]) -> LandResult:
    """Run ``persist`` so that a shutdown cannot ack a batch that did not commit."""
    task = asyncio.ensure_future(persist(resources, rows, dead))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=15)
        except Exception:
            log.critical("bronze: stopping with an unpersisted batch; exiting before offsets commit")
            os._exit(EXIT_UNPERSISTED)
        raise


def register_bronze(app: faust.App, topic: faust.TopicT, dead_topic: faust.TopicT, resources: StreamResources,
                    activity: BronzeActivity | None = None, offsets: LandedOffsets | None = None) -> None:
    settings = resources.settings
    activity = activity or BronzeActivity()
    offsets = offsets or LandedOffsets(app, resources)

    @app.agent(topic, name="bronze", concurrency=1)
    async def bronze(stream: faust.StreamT[bytes]) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]  # faust's Stream has it, its StreamT does not declare it
            settings.bronze_batch_size, within=settings.bronze_batch_within_s
        )
        async for events in batches:
            activity.batch_started()
            started = time.perf_counter()
            rows, dead = split(events)
            await offsets.track({e.message.tp for e in events})
            try:
                result = await persist_shielded(resources, rows, dead)
            finally:
                activity.batch_done()
            await offsets.mend(result.holes)
            STAGE_BATCH_SIZE.labels("bronze").observe(len(events))
            STAGE_BATCH_SECONDS.labels("bronze").observe(time.perf_counter() - started)
            STAGE_ROWS.labels("bronze", "inserted").inc(result.inserted)
            STAGE_ROWS.labels("bronze", "duplicate").inc(result.duplicates)
            if dead:
                for letter in dead:
                    DEAD_LETTERS.labels(letter.code).inc()
                await _publish_dead(dead_topic, dead)

    del bronze


async def _publish_dead(dead_topic: faust.TopicT, dead: list[DeadLetter]) -> None:
    """Best effort: the dead letters are already durable in ops.dead_letters."""
    for letter in dead:
        try:
            await dead_topic.send(key=letter.key, value=letter.raw,
                                  headers={"scout-reason": letter.reason.encode()})
        except Exception as exc:
            log.warning("bronze: dead letter not published (kept in ops.dead_letters): %r (%s)",
                        exc, classify(exc))
