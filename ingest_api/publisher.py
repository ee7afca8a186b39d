"""Publish envelopes to Kafka with acks=all and an idempotent producer; no ack in time is a 503.

Example::

    publisher = Publisher(settings); await publisher.start()
    ack = await publisher.publish(envelope)              # raises PublishUnavailable when Kafka does not ack
    results = await publisher.publish_many(envelopes)    # an Ack or a PublishUnavailable per envelope

When a send is not acknowledged in time the producer is discarded together with every message it
still buffers: a message answered "not accepted" must never reach the topic later on its own (an
idempotent aiokafka producer would otherwise retry it until the broker comes back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from aiokafka import AIOKafkaProducer

from observability.metrics import PRODUCE_LATENCY
from scout.contract import Envelope
from scout.errors import PublishUnavailable
from scout.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ack:
    partition: int
    offset: int


class Publisher:
    COOL_DOWN_S = 1.0  # after a failed connect, fail fast for this long instead of queueing on the lock

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._down_until = 0.0

    def _new_producer(self) -> AIOKafkaProducer:
        timeout_ms = int(self.settings.produce_timeout_s * 1000)
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            client_id="scout-ingest-api",
            acks="all",
            enable_idempotence=self.settings.kafka_idempotence,
            linger_ms=2,
            max_batch_size=self.settings.produce_max_batch_bytes,
            request_timeout_ms=max(timeout_ms, 1000),
            max_request_size=2_000_000,
        )

    async def start(self) -> bool:
        """Connect; False (not raised) when Kafka is unreachable, so the API can report not-ready."""
        async with self._lock:
            if self._producer is not None:
                return True
            if time.monotonic() < self._down_until:
                return False
            producer = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), timeout=self.settings.produce_timeout_s)
            except Exception as exc:
                log.warning("ingest: Kafka not reachable (%r)", exc)
                await _quiet_stop(producer)
                self._down_until = time.monotonic() + self.COOL_DOWN_S
                return False
            self._producer = producer
            return True

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await _quiet_stop(self._producer)
                self._producer = None

    async def publish(self, envelope: Envelope) -> Ack:
        (result,) = await self.publish_many([envelope])
        if isinstance(result, PublishUnavailable):
            raise result
        return result

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[Ack | PublishUnavailable]:
        """Produce every envelope and wait for the acks; each result is its Ack or why there is none."""
        if not envelopes:
            return []
        producer = self._producer
        if producer is None and await self.start():
            producer = self._producer
        if producer is None:
            return [PublishUnavailable(f"Kafka unreachable (event_hash={e.event_hash})") for e in envelopes]
        futures = await self._send_all(producer, envelopes)
        results: list[Ack | PublishUnavailable] = []
        failed = False
        for envelope, future in zip(envelopes, futures, strict=True):
            if future is not None and future.done() and not future.cancelled() and future.exception() is None:
                meta = future.result()
                results.append(Ack(meta.partition, meta.offset))
                continue
            failed = True
            cause = future.exception() if future is not None and future.done() and not future.cancelled() else None
            reason = type(cause).__name__ if cause is not None else "no acknowledgement in time"
            results.append(PublishUnavailable(
                f"Kafka did not acknowledge event_hash={envelope.event_hash}: {reason}"))
        if failed:
            await self._discard(producer)
        return results

    async def _send_all(self, producer: AIOKafkaProducer,
                        envelopes: Sequence[Envelope]) -> list[asyncio.Future | None]:  # type: ignore[type-arg]
        futures: list[asyncio.Future | None] = [None] * len(envelopes)  # type: ignore[type-arg]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.produce_timeout_s):
                for i, envelope in enumerate(envelopes):
                    future = await producer.send(
                        self.settings.topic,
                        value=envelope.to_bytes(),
                        key=envelope.transaction.store_id.encode(),
                        headers=[("event_hash", envelope.event_hash.encode()),
                                 ("source", envelope.source.encode())],
                    )
                    future.add_done_callback(partial(_observe_ack, started))
                    futures[i] = future
                await asyncio.wait([f for f in futures if f is not None])
        except Exception as exc:  # a timeout or a refused send: the caller sees which envelopes have no ack
            log.warning("ingest: produce failed after %d of %d sends: %r",
                        sum(f is not None for f in futures), len(envelopes), exc)
        return futures

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        """Drop the producer and everything it still buffers, so no unacknowledged message is sent later."""
        async with self._lock:
            if self._producer is producer:
                self._producer = None
        accumulator = getattr(producer, "_message_accumulator", None)
        if accumulator is not None:
            accumulator.fail_all(PublishUnavailable("producer discarded after a failed send"))
        await _quiet_stop(producer)

    async def ready(self) -> bool:
        if self._producer is None and not await self.start():
            return False
        producer = self._producer
        if producer is None:
            return False
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=2)
            return True
        except Exception:
            return False


def _observe_ack(started: float, future: asyncio.Future) -> None:  # type: ignore[type-arg]
    if not future.cancelled() and future.exception() is None:
        PRODUCE_LATENCY.observe(time.perf_counter() - started)


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout=5)
    except Exception as exc:  # stopping a half-started producer may fail; nothing to keep
        log.debug("ingest: producer stop: %r", exc)
