"""Raw limits of this machine for the same messages and rows: Kafka produce and consume, PostgreSQL COPY."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner
from kafka import KafkaProducer

from ingest_api.publisher import new_producer
from scout.settings import Settings


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


Message = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


def _median_of(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The run with the median rate, and every run's rate (the spread)."""
    ordered = sorted(runs, key=lambda r: r["msg_s"])
    return {**ordered[len(ordered) // 2], "runs_msg_s": [r["msg_s"] for r in runs]}


def kafka_produce_batched(settings: Settings, messages: Sequence[Message], *, per_publish: int = 500,
                          concurrency: int = 4, repeats: int = 3, warmup: int = 2_000) -> dict[str, Any]:
    """The raw limit of the API's batch path: the API's own producer (``new_producer``: aiokafka, acks=all,
    idempotent, linger 2 ms, its batch size) and its batching (``per_publish`` messages at a time cut into one
    record batch per partition by the default partitioner, ``concurrency`` publishes in flight, each waiting for
    its acks), without HTTP, validation or hashing. After ``warmup`` messages (connections, metadata, the
    broker's first segment), the median of ``repeats`` passes over ``messages``."""

    async def run() -> dict[str, Any]:
        producer = new_producer(settings)
        await producer.start()
        partitioner = DefaultPartitioner()
        try:
            partitions = sorted(await producer.partitions_for(settings.topic))

            async def publish(chunk: Sequence[Message]) -> None:
                builders: dict[int, Any] = {}
                futures = []
                for key, value, headers in chunk:
                    partition = partitioner(key, partitions, partitions)
                    builder = builders.get(partition) or builders.setdefault(partition, producer.create_batch())
                    if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        builder.close()
                        futures.append(await producer.send_batch(builder, settings.topic, partition=partition))
                        builder = builders[partition] = producer.create_batch()
                        builder.append(key=key, value=value, timestamp=None, headers=headers)
                for partition, builder in builders.items():
                    builder.close()
                    futures.append(await producer.send_batch(builder, settings.topic, partition=partition))
                for future in futures:
                    await future

            async def one_pass(batch: Sequence[Message]) -> dict[str, float]:
                chunks = iter([batch[i:i + per_publish] for i in range(0, len(batch), per_publish)])

                async def sender() -> None:
                    for chunk in chunks:
                        await publish(chunk)

                started = time.perf_counter()
                await asyncio.gather(*(sender() for _ in range(concurrency)))
                return {"msg_s": len(batch) / (time.perf_counter() - started)}

            await one_pass(messages[:warmup])
            return _median_of([await one_pass(messages) for _ in range(repeats)])
        finally:
            await producer.stop()

    return asyncio.run(run())


def kafka_produce_awaited(settings: Settings, messages: Sequence[Message], concurrency: int, *,
                          repeats: int = 3, warmup: int = 2_000) -> dict[str, Any]:
    """The ceiling of a durable 202: the API's producer (``new_producer``), each message awaited before its
    sender sends the next, ``concurrency`` senders at once; after a warm-up, the median of ``repeats`` passes."""

    async def run() -> dict[str, Any]:
        producer = new_producer(settings)
        await producer.start()

        async def one_pass(batch: Sequence[Message]) -> dict[str, float]:
            queue, latencies = iter(batch), []

            async def sender() -> None:
                for key, value, headers in queue:
                    started = time.perf_counter()
                    await (await producer.send(settings.topic, value=value, key=key, headers=headers))
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            latencies.sort()
            return {"msg_s": len(batch) / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
                    "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000}

        try:
            await one_pass(messages[:warmup])
            return _median_of([await one_pass(messages) for _ in range(repeats)])
        finally:
            await producer.stop()

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
