"""The ingest API against real Kafka: 202 only after the ack, the event on the topic, nothing for bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cli.services import free_port
from ingest_api.app import create_app
from scout.contract import Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.factories import bearer, topic_messages, tx_dict


def test_accepted_transactions_are_on_the_topic_and_invalid_ones_are_not(settings: Settings) -> None:
    ensure_topics(settings)
    auth = bearer(settings.database_dsn())
    good = tx_dict(1)
    invalid = [
        ("store_id", {k: v for k, v in good.items() if k != "store_id"}),
        ("total_amount", {**good, "total_amount": "12.345"}),
        ("items", {**good, "items": []}),
        ("ts", {**good, "ts": "2026-01-05T10:00:00"}),
    ]
    with TestClient(create_app(settings), headers=auth) as client:
        first = client.post("/v1/transactions", json=good)
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
    expected = Transaction.model_validate(good).event_hash()
    assert first.json()["event_hash"] == expected
    assert not_json.status_code == 422
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    assert ready.status_code == 200 and ready.json()["checks"] == {"kafka": "ok", "database": "ok"}
    messages = topic_messages(settings)
    assert [m["event_hash"] for _, m in messages] == [expected]  # nothing from the invalid ones
    assert {key for key, _ in messages} == {b"STORE-001"}


def test_unreachable_kafka_is_503_with_retry_after(database: str) -> None:
    settings = Settings(database_url=database, kafka_bootstrap=f"127.0.0.1:{free_port()}",  # type: ignore[arg-type]
                        produce_timeout_s=0.5, retry_after_s=7)
    with TestClient(create_app(settings), headers=bearer(database)) as client:
        response = client.post("/v1/transactions", json=tx_dict(1))
        ready = client.get("/readyz")
        live = client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "kafka_unavailable"
    assert ready.status_code == 503 and ready.json()["checks"]["kafka"] == "unreachable"
    assert live.status_code == 200
