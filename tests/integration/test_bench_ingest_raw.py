"""`scout bench ingest`'s raw produce limits use the API's own producer and batching: every message lands with
the partition the API's publisher would choose and the API's headers, after a warm-up, in 3 measured passes."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from cli.bench import raw
from cli.bench.ingest import _messages
from ingest_api.publisher import Publisher
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.factories import tx_dict


def _on_topic(settings: Settings) -> list[tuple[int, bytes, dict[str, bytes]]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=3000)
    partitions = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found = [(m.partition, m.key, dict(m.headers)) for m in consumer]
    consumer.close()
    return found


def test_raw_produce_is_the_apis_producer_and_batching(settings: Settings) -> None:
    ensure_topics(settings)
    messages = _messages([tx_dict(n, store=f"STORE-{n % 7:03d}") for n in range(600)])
    result = raw.kafka_produce_batched(settings, messages, warmup=100)
    assert len(result["runs_msg_s"]) == 3 and result["msg_s"] == sorted(result["runs_msg_s"])[1]
    landed = _on_topic(settings)
    assert len(landed) == 100 + 3 * 600
    publisher = Publisher(settings)
    partitions = list(range(settings.topic_partitions))
    for partition, key, headers in landed:
        assert partition == publisher._partition(key, partitions)  # where the API's publisher puts this store
        assert set(headers) == {"event_hash", "source"} and headers["source"] == b"api"
