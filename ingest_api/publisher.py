"""Publish envelopes to Kafka with acks=all and an idempotent producer; a timeout is a 503.

Example::

    publisher = Publisher(settings); await publisher.start()
    ack = await publisher.publish(envelope)      # raises PublishUnavailable when Kafka does not ack
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    def _new_producer(self) -> AIOKafkaProducer:
        timeout_ms = int(self.settings.produce_timeout_s * 1000)
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            client_id="scout-ingest-api",
            acks="all",
            enable_idempotence=self.settings.kafka_idempotence,
            linger_ms=2,
            request_timeout_ms=max(timeout_ms, 1000),
            max_request_size=2_000_000,
        )

    async def start(self) -> bool:
        """Connect; False (not raised) when Kafka is unreachable, so the API can report not-ready."""
        async with self._lock:
            if self._producer is not None:
                return True
            producer = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), timeout=self.settings.produce_timeout_s)
            except Exception as exc:
                log.warning("ingest: Kafka not reachable yet (%r)", exc)
                await _quiet_stop(producer)
                return False
            self._producer = producer
            return True

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await _quiet_stop(self._producer)
                self._producer = None

    async def publish(self, envelope: Envelope) -> Ack:
        if self._producer is None and not await self.start():
            raise PublishUnavailable(f"Kafka unreachable (event_hash={envelope.event_hash})")
        assert self._producer is not None
        started = time.perf_counter()
        try:
            meta = await asyncio.wait_for(
                self._producer.send_and_wait(
                    self.settings.topic,
                    value=envelope.to_bytes(),
                    key=envelope.transaction.store_id.encode(),
                    headers=[("event_hash", envelope.event_hash.encode()), ("source", envelope.source.encode())],
                ),
                timeout=self.settings.produce_timeout_s,
            )
        except Exception as exc:
            raise PublishUnavailable(
                f"Kafka did not acknowledge event_hash={envelope.event_hash}: {type(exc).__name__}"
            ) from exc
        PRODUCE_LATENCY.observe(time.perf_counter() - started)
        return Ack(meta.partition, meta.offset)

    async def ready(self) -> bool:
        if self._producer is None and not await self.start():
            return False
        assert self._producer is not None
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=2)
            return True
        except Exception:
            return False


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout=5)
    except Exception as exc:  # stopping a half-started producer may fail; nothing to keep
        log.debug("ingest: producer stop: %r", exc)
