"""The ingest API against real Kafka: 202 only after the ack, the event on the topic, nothing for bad input."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from ingest_api.app import create_app
from scout.contract import Transaction
from scout.kafka import ensure_topics
from scout.services import free_port
from scout.settings import Settings
from tests.factories import tx_dict


def _messages(settings: Settings) -> list[tuple[bytes, dict]]:  # type: ignore[type-arg]
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=3000)
    partitions = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    out = []
    for message in consumer:
        out.append((message.key, orjson.loads(message.value)))
        if all(consumer.position(tp) >= ends[tp] for tp in partitions):
            break
    consumer.close()
    return out


def test_accepted_transactions_are_on_the_topic_and_invalid_ones_are_not(settings: Settings) -> None:
    ensure_topics(settings)
    good = tx_dict(1)
    reordered = dict(reversed(list(good.items())))
    invalid = [
        ("store_id", {k: v for k, v in good.items() if k != "store_id"}),
        ("total_amount", {**good, "total_amount": "12.345"}),
        ("items", {**good, "items": []}),
        ("ts", {**good, "ts": "2026-01-05T10:00:00"}),
    ]
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/transactions", json=good)
        again = client.post("/v1/transactions", json=reordered)
        for field, body in invalid:
            response = client.post("/v1/transactions", json=body)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["details"][0]["field"] == field
        not_json = client.post("/v1/transactions", content=b"{not json",
                               headers={"content-type": "application/json"})
        huge = client.post("/v1/transactions", content=b"x" * 5_000_000,
                           headers={"content-type": "application/json"})
        ready = client.get("/readyz")
    assert first.status_code == 202, first.text
    assert again.status_code == 202
    expected = Transaction.model_validate(good).event_hash()
    assert first.json()["event_hash"] == again.json()["event_hash"] == expected
    assert not_json.status_code == 422
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    assert ready.status_code == 200 and ready.json()["checks"] == {"kafka": "ok", "database": "ok"}
    messages = _messages(settings)
    assert len(messages) == 2  # the two accepted posts; nothing from the invalid ones
    assert {m["event_hash"] for _, m in messages} == {expected}
    assert {key for key, _ in messages} == {b"STORE-001"}


def test_unreachable_kafka_is_503_with_retry_after(database: str) -> None:
    settings = Settings(database_url=database, kafka_bootstrap=f"127.0.0.1:{free_port()}",  # type: ignore[arg-type]
                        produce_timeout_s=0.5, retry_after_s=7)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/transactions", json=tx_dict(1))
        ready = client.get("/readyz")
        live = client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "kafka_unavailable"
    assert ready.status_code == 503 and ready.json()["checks"]["kafka"] == "unreachable"
    assert live.status_code == 200
