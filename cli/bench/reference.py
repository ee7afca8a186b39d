"""A reference consumer for the bronze benchmark: the same decode and landing code as the Faust agent, in
a plain aiokafka ``getmany`` loop with offsets committed after the database commit. Comparing the two shows
what Faust's per-message machinery costs; Scout itself runs the Faust agent."""

from __future__ import annotations

import asyncio
import time

import psycopg
from aiokafka import AIOKafkaConsumer

from streams.bronze.decode import BronzeRow, DeadLetter, Position, decode
from streams.bronze.sink import land


async def _run(bootstrap: str, topic: str, dsn: str, expected: int, batch: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="bench-reference",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    landed, started = 0, None
    try:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            while landed < expected:
                records = await consumer.getmany(timeout_ms=1000, max_records=batch)
                if not records:
                    continue
                started = started or time.perf_counter()
                rows: list[BronzeRow] = []
                dead: list[DeadLetter] = []
                for tp, messages in records.items():
                    for m in messages:
                        one = decode(m.value, key=m.key, position=Position(tp.topic, tp.partition, m.offset))
                        if isinstance(one, BronzeRow):
                            rows.append(one)
                        else:
                            dead.append(one)
                done = await land(conn, rows, dead)
                await consumer.commit()
                landed += done.inserted + done.duplicates + len(done.dead_letters)
    finally:
        await consumer.stop()
    assert started is not None
    return landed / (time.perf_counter() - started)


def reference_bronze_rate(bootstrap: str, topic: str, dsn: str, expected: int, batch: int = 5000) -> float:
    return asyncio.run(_run(bootstrap, topic, dsn, expected, batch))
