"""The publisher against a real broker: every ack names the partition and offset where the message really is,
whether the envelopes went one ``send`` each or in the publisher's own record batches."""

from __future__ import annotations

import asyncio

from kafka import KafkaConsumer, TopicPartition

from ingest_api.publisher import BATCHED_FROM, Ack, Publisher
from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.factories import tx_dict


def _envelopes(first: int, count: int) -> list[Envelope]:
    return [Envelope.wrap(Transaction.model_validate(tx_dict(n, store=f"STORE-{n % 7:03d}")), source="api")
            for n in range(first, first + count)]


def _on_topic(settings: Settings) -> dict[tuple[int, int], tuple[bytes, bytes, dict[str, bytes]]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=3000)
    partitions = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found = {(m.partition, m.offset): (m.key, m.value, dict(m.headers)) for m in consumer}
    consumer.close()
    return found


def test_each_ack_names_where_its_message_is_and_a_store_keeps_its_partition(settings: Settings) -> None:
    ensure_topics(settings)
    few, many = _envelopes(0, 3), _envelopes(100, BATCHED_FROM * 8)

    async def run() -> tuple[list[object], list[object]]:
        publisher = Publisher(settings.model_copy(update={"produce_max_batch_bytes": 16_384}))  # several batches
        try:
            return await publisher.publish_many(few), await publisher.publish_many(many)
        finally:
            await publisher.stop()

    acks_few, acks_many = asyncio.run(run())
    on_topic = _on_topic(settings)
    partition_of_store: dict[str, int] = {}
    for envelope, ack in zip(few + many, acks_few + acks_many, strict=True):
        assert isinstance(ack, Ack)
        key, value, headers = on_topic[(ack.partition, ack.offset)]
        assert (key, value) == (envelope.transaction.store_id.encode(), envelope.to_bytes())
        assert headers == {"event_hash": envelope.event_hash.encode(), "source": b"api"}
        assert partition_of_store.setdefault(envelope.transaction.store_id, ack.partition) == ack.partition
    assert len(on_topic) == len(few) + len(many)


def test_concurrent_requests_share_produce_requests(settings: Settings) -> None:
    """Single publishes of concurrent requests (32 in flight, as in one API worker under load) reach the broker
    together: while one round waits for its acks the next collects every publish arriving meanwhile and goes as
    one record batch per partition in one produce request, each publish still waiting for its own ack."""
    ensure_topics(settings)
    envelopes = _envelopes(1000, 640)

    async def run() -> tuple[list[Ack], int]:
        publisher = Publisher(settings)
        produce_requests = 0
        try:
            assert await publisher.start() and publisher._producer is not None
            client = publisher._producer.client
            send = client.send

            async def counting(node_id: int, request: object, **kwargs: object) -> object:
                nonlocal produce_requests
                produce_requests += type(request).__name__.startswith("ProduceRequest")
                return await send(node_id, request, **kwargs)

            client.send = counting  # type: ignore[method-assign]
            queue = iter(envelopes)

            async def device() -> list[Ack]:
                return [await publisher.publish(envelope) for envelope in queue]

            acks = [ack for acks in await asyncio.gather(*(device() for _ in range(32))) for ack in acks]
            return acks, produce_requests
        finally:
            await publisher.stop()

    acks, produce_requests = asyncio.run(run())
    assert len(acks) == len(envelopes) and len(set(acks)) == len(envelopes)
    assert len(_on_topic(settings)) == len(envelopes)
    assert produce_requests <= len(envelopes) / 8, produce_requests  # ≈ 32 records each on a quiet machine
