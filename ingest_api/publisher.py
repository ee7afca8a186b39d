"""Publish envelopes to Kafka with acks=all and an idempotent producer; no ack in time is a 503.

Example::

    publisher = Publisher(settings); await publisher.start()
    ack = await publisher.publish(envelope)              # raises PublishUnavailable when Kafka does not ack
    results = await publisher.publish_many(envelopes)    # an Ack or a PublishUnavailable per envelope

Single publishes of concurrent requests go in rounds: while one round waits for its acks, the next collects
every request arriving meanwhile, and goes as one record batch per partition (one produce request); each
request still waits for its own ack.

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
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import RecordMetadata

from observability.metrics import PRODUCE_LATENCY, observe_many
from scout.contract import Envelope
from scout.errors import PublishUnavailable
from scout.settings import Settings

log = logging.getLogger(__name__)


BATCHED_FROM = 32  # a publish of this many envelopes builds its own record batches


@dataclass(frozen=True, slots=True)
class Ack:  # slots: a recent-hash memory of 100,000 entries per process holds one each
    partition: int
    offset: int


Outcome = Ack | BaseException | None  # acknowledged, refused, or no answer in time


@dataclass(eq=False)
class _Waiting:
    """A single publish waiting for its round: its envelope, its answer, the time by which it must have one."""

    envelope: Envelope
    answer: asyncio.Future[Ack | PublishUnavailable]
    deadline: float  # the event loop's clock


def new_producer(settings: Settings) -> AIOKafkaProducer:
    """The API's producer: acks=all, idempotent (unless turned off), linger 2 ms, the configured batch size."""
    timeout_ms = int(settings.produce_timeout_s * 1000)
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="scout-ingest-api",
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=2,
        max_batch_size=settings.produce_max_batch_bytes,
        request_timeout_ms=max(timeout_ms, 1000),
        max_request_size=2_000_000,
    )


class Publisher:
    COOL_DOWN_S = 1.0  # after a failed connect, fail fast for this long instead of queueing on the lock

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._down_until = 0.0
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[bytes, tuple[int, int]] = {}
        self._waiting: list[_Waiting] = []  # single publishes for the next round
        self._rounds: asyncio.Task[None] | None = None

    def _new_producer(self) -> AIOKafkaProducer:
        return new_producer(self.settings)

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
        rounds = self._rounds
        if rounds is not None:  # the publishes waiting get their answer first
            await asyncio.wait([rounds], timeout=2 * self.settings.produce_timeout_s)
        async with self._lock:
            if self._producer is not None:
                await _quiet_stop(self._producer)
                self._producer = None

    async def publish(self, envelope: Envelope) -> Ack:
        """One envelope, sent in the next round together with those of every other request waiting meanwhile
        (one record batch per partition); its own Ack, or PublishUnavailable within ``produce_timeout_s``."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(envelope, loop.create_future(), loop.time() + self.settings.produce_timeout_s)
        self._waiting.append(waiting)
        if self._rounds is None:
            self._rounds = loop.create_task(self._send_rounds())
        try:
            result = await waiting.answer
        except asyncio.CancelledError:
            if waiting in self._waiting:  # not handed to the producer yet: it must never be
                self._waiting.remove(waiting)
            raise
        if isinstance(result, PublishUnavailable):
            raise result
        return result

    async def _send_rounds(self) -> None:
        """While single publishes wait: take them all, send them as one ``publish_many``, wait for its acks.

        A round starts when the previous one was acknowledged (or failed): the requests arriving meanwhile go
        together, as many per round as are in flight, and one produce request carries them. An envelope whose
        time ran out before its round is answered "no acknowledgement in time" without being sent."""
        loop = asyncio.get_running_loop()
        live: list[_Waiting] = []
        try:
            while self._waiting:
                await asyncio.sleep(0)  # the requests of this turn of the event loop join the round
                batch, self._waiting = self._waiting, []
                now = loop.time()
                live = []
                for waiting in batch:
                    if waiting.answer.done():  # its request was cancelled
                        continue
                    if waiting.deadline <= now:
                        waiting.answer.set_result(PublishUnavailable(
                            f"Kafka did not acknowledge event_hash={waiting.envelope.event_hash}: "
                            "no acknowledgement in time (not sent)"))
                        continue
                    live.append(waiting)
                if not live:
                    continue
                try:
                    results = await self.publish_many([w.envelope for w in live], batched=True,
                                                      timeout_s=min(w.deadline for w in live) - now)
                except Exception as exc:  # publish_many answers per envelope; this is a bug, not an outage
                    log.exception("ingest: a publish round failed")
                    results = [PublishUnavailable(f"publish failed: {exc!r}")] * len(live)
                for waiting, result in zip(live, results, strict=True):
                    if not waiting.answer.done():
                        waiting.answer.set_result(result)
        finally:
            self._rounds = None
            for waiting in live:  # only when cancelled in a round (the loop is closing): no answer is known
                waiting.answer.cancel()

    async def publish_many(self, envelopes: Sequence[Envelope], *, batched: bool | None = None,
                           timeout_s: float | None = None) -> list[Ack | PublishUnavailable]:
        """Produce every envelope and wait for the acks; each result is its Ack or why there is none.

        ``batched``: build the record batches here (default: from ``BATCHED_FROM`` envelopes on);
        ``timeout_s``: how long to wait for the acks (default ``produce_timeout_s``)."""
        if not envelopes:
            return []
        producer = self._producer
        if producer is None and await self.start():
            producer = self._producer
        if producer is None:
            return [PublishUnavailable(f"Kafka unreachable (event_hash={e.event_hash})") for e in envelopes]
        if batched is None:
            batched = len(envelopes) >= BATCHED_FROM
        timeout = self.settings.produce_timeout_s if timeout_s is None else timeout_s
        outcomes = await (self._send_batches if batched else self._send_each)(producer, envelopes, timeout)
        results: list[Ack | PublishUnavailable] = []
        failed = False
        for envelope, outcome in zip(envelopes, outcomes, strict=True):
            if isinstance(outcome, Ack):
                results.append(outcome)
                continue
            failed = True
            reason = type(outcome).__name__ if outcome is not None else "no acknowledgement in time"
            results.append(PublishUnavailable(
                f"Kafka did not acknowledge event_hash={envelope.event_hash}: {reason}"))
        if failed:
            await self._discard(producer)
        return results

    async def _send_each(self, producer: AIOKafkaProducer, envelopes: Sequence[Envelope],
                         timeout_s: float) -> list[Outcome]:
        """One ``send`` per envelope: the messages of concurrent requests share the producer's batches."""
        futures: list[asyncio.Future | None] = [None] * len(envelopes)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                for i, envelope in enumerate(envelopes):
                    future = await producer.send(self.settings.topic, value=envelope.to_bytes(),
                                                 key=envelope.transaction.store_id.encode(), headers=_headers(envelope))
                    future.add_done_callback(partial(_observe_ack, started, 1))
                    futures[i] = future
                await asyncio.wait([f for f in futures if f is not None])
        except Exception as exc:  # a timeout or a refused send: the caller sees which envelopes have no ack
            log.warning("ingest: produce failed after %d of %d sends: %r",
                        sum(f is not None for f in futures), len(envelopes), exc)
        outcomes: list[Outcome] = []
        for future in futures:
            meta = _settled(future)
            outcomes.append(meta if not isinstance(meta, RecordMetadata) else Ack(meta.partition, meta.offset))
        return outcomes

    async def _send_batches(self, producer: AIOKafkaProducer, envelopes: Sequence[Envelope],
                            timeout_s: float) -> list[Outcome]:
        """Many envelopes: one record batch per partition (as full as the batch size allows) and one future per
        batch; the default partitioner's choice, so a store's events keep their partition and their order."""
        topic = self.settings.topic
        sent: list[tuple[asyncio.Future, int, list[int]]] = []
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                partitions = sorted(await producer.partitions_for(topic))
                filling: dict[int, tuple[BatchBuilder, list[int]]] = {}
                for i, envelope in enumerate(envelopes):
                    key = envelope.transaction.store_id.encode()
                    partition = self._partition(key, partitions)
                    builder, members = filling.get(partition) or (producer.create_batch(), [])
                    value, headers = envelope.to_bytes(), _headers(envelope)
                    if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        sent.append((await self._submit(producer, builder, partition, started, len(members)),
                                     partition, members))
                        builder, members = producer.create_batch(), []
                        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                            raise PublishUnavailable(f"event_hash={envelope.event_hash} exceeds the batch size")
                    members.append(i)
                    filling[partition] = (builder, members)
                for partition, (builder, members) in filling.items():
                    sent.append((await self._submit(producer, builder, partition, started, len(members)),
                                 partition, members))
                await asyncio.wait([future for future, _, _ in sent])
        except Exception as exc:  # a timeout or a refused send: the caller sees which envelopes have no ack
            log.warning("ingest: produce failed after %d of %d sends: %r",
                        sum(len(m) for _, _, m in sent), len(envelopes), exc)
        outcomes: list[Outcome] = [None] * len(envelopes)
        for future, partition, members in sent:
            meta = _settled(future)
            for n, i in enumerate(members):
                outcomes[i] = meta if not isinstance(meta, RecordMetadata) else Ack(partition, meta.offset + n)
        return outcomes

    async def _submit(self, producer: AIOKafkaProducer, builder: BatchBuilder, partition: int, started: float,
                      count: int) -> asyncio.Future:
        builder.close()
        future = await producer.send_batch(builder, self.settings.topic, partition=partition)
        future.add_done_callback(partial(_observe_ack, started, count))
        return future

    def _partition(self, key: bytes, partitions: list[int]) -> int:
        """The default partitioner's choice (murmur2 of the key), remembered per key and partition count."""
        cached = self._partitions.get(key)
        if cached is not None and cached[0] == len(partitions):
            return cached[1]
        partition = self._partitioner(key, partitions, partitions)
        if len(self._partitions) > 100_000:
            self._partitions.clear()
        self._partitions[key] = (len(partitions), partition)
        return partition

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        """Drop the producer and everything it still buffers, so no unacknowledged message is sent later."""
        async with self._lock:
            if self._producer is producer:
                self._producer = None
        sender = getattr(getattr(producer, "_sender", None), "sender_task", None)
        if sender is not None and not sender.done():  # first stop sending, then fail what is left
            sender.cancel()
            await asyncio.wait([sender], timeout=self.settings.produce_timeout_s)
        accumulator = getattr(producer, "_message_accumulator", None)
        if accumulator is not None:
            _fail_buffered(accumulator, PublishUnavailable("producer discarded after a failed send"))
        await _quiet_stop(producer)

    async def ready(self) -> str | None:
        """None when Kafka answers and the transactions topic exists; otherwise why not, for /readyz."""
        if self._producer is None and not await self.start():
            return "unreachable"
        producer = self._producer
        if producer is None:
            return "unreachable"
        try:
            cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=2)
        except Exception:
            return "unreachable"
        if self.settings.topic not in cluster.topics():
            return f"topic {self.settings.topic} missing: run `scout topics create`"
        return None


def _fail_buffered(accumulator: Any, exc: PublishUnavailable) -> None:
    """Fail every batch the producer still holds, and mark each failure seen: a request that already gave up
    on its send will not look at it, and asyncio would log each as "Future exception was never retrieved"."""
    queued = [b for batches in accumulator._batches.values() for b in batches]
    batches = queued + list(accumulator._pending_batches)
    # A batch sent once and queued again for a retry still carries aiokafka's done-callback that removes it from
    # the pending set: put it there, or failing it raises KeyError in that callback (aiokafka 0.14).
    accumulator._pending_batches.update(queued)
    accumulator.fail_all(exc)
    for batch in batches:
        for future in (batch.future, batch._drain_waiter, *(f for f, _ in batch._msg_futures)):
            if future.done() and not future.cancelled():
                future.exception()


def _headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    return [("event_hash", envelope.event_hash.encode()), ("source", envelope.source.encode())]


def _settled(future: asyncio.Future | None) -> RecordMetadata | BaseException | None:
    """The future's metadata, its error, or None when it has no answer (not sent, pending or cancelled)."""
    if future is None or not future.done() or future.cancelled():
        return None
    return future.exception() or future.result()


def _observe_ack(started: float, count: int, future: asyncio.Future) -> None:
    """One observation per acknowledged message, however they were batched (written once per batch)."""
    if not future.cancelled() and future.exception() is None:
        observe_many(PRODUCE_LATENCY, time.perf_counter() - started, count)


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout=5)
    except Exception as exc:  # stopping a half-started producer may fail; nothing to keep
        log.debug("ingest: producer stop: %r", exc)
