"""Raw limits of this machine for the same messages and rows: Kafka produce and consume, PostgreSQL COPY."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaProducer


def kafka_produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> float:
    """Messages per second with acks=all, 1 MB batches, linger 20 ms (kafka-python with crc32c)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=20,
                             batch_size=1 << 20, max_request_size=4 << 20)
    started = time.perf_counter()
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(messages) / elapsed


def kafka_produce_awaited(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]],
                          concurrency: int) -> dict[str, float]:
    """The ceiling of a durable 202: aiokafka with the API's producer settings (acks=all, idempotent, linger
    2 ms), each message awaited before its sender sends the next, ``concurrency`` senders at once."""

    async def run() -> dict[str, float]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
        await producer.start()
        queue, latencies = iter(messages), []

        async def sender() -> None:
            for key, value in queue:
                started = time.perf_counter()
                await (await producer.send(topic, value=value, key=key))
                latencies.append(time.perf_counter() - started)

        try:
            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        finally:
            await producer.stop()
        latencies.sort()
        return {"msg_s": len(messages) / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
                "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000}

    return asyncio.run(run())


def kafka_consume(bootstrap: str, topic: str, expected: int) -> float:
    """Messages per second of an aiokafka ``getmany`` loop reading the topic from the start."""

    async def run() -> float:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 << 20)
        await consumer.start()
        try:
            seen, started = 0, None
            while seen < expected:
                batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
                if batch and started is None:
                    started = time.perf_counter()
                seen += sum(len(records) for records in batch.values())
            assert started is not None
            return seen / (time.perf_counter() - started)
        finally:
            await consumer.stop()

    return asyncio.run(run())


def copy_rows(dsn: str, like: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], *,
              into_like: bool = True) -> float:
    """Rows per second of a plain COPY into a scratch copy of ``like`` (same indexes, no foreign keys);
    with ``into_like=False`` into ``like`` itself (to load a backlog)."""
    target = "bench_raw_" + like.replace(".", "_") if into_like else like
    with psycopg.connect(dsn, autocommit=True) as conn:
        if into_like:
            conn.execute(f"DROP TABLE IF EXISTS {target}".encode())
            conn.execute(f"CREATE TABLE {target} (LIKE {like} INCLUDING ALL)".encode())
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, \
                cur.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN".encode()) as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        if into_like:
            conn.execute(f"DROP TABLE {target}".encode())
    return len(rows) / elapsed
