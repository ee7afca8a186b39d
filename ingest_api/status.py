"""The status page's figures: one snapshot of the monitor views as scout_reader, with the broker's end offsets.

Example::

    offsets = EndOffsets(settings)                    # one per API process, closed at shutdown
    body = await snapshot(pool, settings, offsets)    # what GET /v1/status answers
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ingest_api.analytics import reader_session
from quality.alerts import runbook_anchor
from scout.db import q
from scout.settings import Settings

log = logging.getLogger(__name__)

WINDOW_MINUTES = 15
MAX_ALERTS = 50
BROKER_TIMEOUT_S = 1.0


class EndOffsets:
    """The broker's end offset per partition of the transactions topic, read by a consumer of no group (it
    commits nothing and joins nothing). Connected on first use; after a failure the next call connects again."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._failing = False

    async def fetch(self) -> dict[int, int] | None:
        """Partition -> end offset; None when the broker does not answer within BROKER_TIMEOUT_S."""
        async with self._lock:
            try:
                async with asyncio.timeout(BROKER_TIMEOUT_S):
                    ends = await self._fetch()
            except Exception as exc:  # any broker trouble: the page shows the lag as unknown
                if not self._failing:
                    log.warning("status page: the broker's end offsets are unavailable (lag shown as unknown "
                                "until it answers): %r", exc)
                self._failing = True
                await self._drop()
                return None
            if self._failing:
                log.info("status page: the broker's end offsets are available again")
            self._failing = False
            return ends

    async def _fetch(self) -> dict[int, int]:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, group_id=None,
                                              enable_auto_commit=False, client_id="scout-status")
            await self._consumer.start()
        topic = self.settings.topic
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:  # asking for partition 0 makes the client track the topic's metadata
            await self._consumer.end_offsets([TopicPartition(topic, 0)])
            partitions = self._consumer.partitions_for_topic(topic) or {0}
        ends = await self._consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def _drop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


def partition_lag(offsets: list[Mapping[str, Any]], ends: Mapping[int, int] | None) -> list[dict[str, Any]]:
    """Per partition: landed offset (PostgreSQL), the broker's end and the lag between them (None when the
    broker did not answer). A partition the broker has and bronze never claimed counts from offset 0."""
    landed = {int(row["kafka_partition"]): dict(row) for row in offsets}
    partitions = sorted(set(landed) | set(ends or {}))
    rows = []
    for partition in partitions:
        row = landed.get(partition, {"kafka_partition": partition, "landed_offset": 0, "epoch": None,
                                     "owner": None, "updated_at": None})
        end = None if ends is None else ends.get(partition)
        lag = None if end is None else max(end - int(row["landed_offset"]), 0)
        rows.append({"partition": partition, "landed_offset": int(row["landed_offset"]), "end_offset": end,
                     "lag": lag, "epoch": row["epoch"], "owner": row["owner"], "moved_at": row["updated_at"]})
    return rows


def shape(snapshot: Mapping[str, Any], ends: Mapping[int, int] | None, topic: str) -> dict[str, Any]:
    """The JSON body: the snapshot's sections, lag per partition and each alert's runbook section."""
    alerts = [{**alert, "runbook": runbook_anchor(alert["rule"])} for alert in snapshot["alerts"]]
    return {
        "as_of": snapshot["as_of"], "since": snapshot["since"], "window_minutes": WINDOW_MINUTES, "topic": topic,
        "throughput": snapshot["throughput"], "latency": snapshot["latency"],
        "partitions": partition_lag(snapshot["offsets"], ends), "broker_reachable": ends is not None,
        "gold": snapshot["gold"], "alerts": alerts, "alerts_open": snapshot["alerts_open"], "jobs": snapshot["jobs"],
    }


async def snapshot(pool: AsyncConnectionPool | None, settings: Settings, offsets: EndOffsets) -> dict[str, Any]:
    """The database's figures and the broker's end offsets, asked for at the same time."""

    async def read() -> dict[str, Any]:
        async with reader_session(pool, settings) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q("status_snapshot"), {"minutes": WINDOW_MINUTES, "topic": settings.topic,
                                                    "alerts": MAX_ALERTS})
            row = await cur.fetchone()
        assert row is not None  # a SELECT without FROM returns one row
        return row

    ends_task = asyncio.create_task(offsets.fetch())
    try:
        found = await read()
    finally:
        ends = await ends_task
    return shape(found, ends, settings.topic)
