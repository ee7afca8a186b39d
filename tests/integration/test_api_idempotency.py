"""Idempotency-Key on real PostgreSQL and Kafka: replay of the first answer, 409 for another body or while
the first request runs, per-token key spaces, expiry, and refusals that are not remembered."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.factories import bearer, topic_messages, tx_dict


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ensure_topics(settings)
    with TestClient(create_app(settings), headers=bearer(settings.database_dsn())) as test_client:
        yield test_client


def _stored(dsn: str) -> list[tuple[str, int | None]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT key, status_code FROM ops.idempotency_keys ORDER BY key").fetchall()


def test_same_key_same_body_replays_the_first_answer(client: TestClient, settings: Settings) -> None:
    key = {"Idempotency-Key": "8e0f4e5c-0b1a-4a53-9d0e-5f1f2b7f6a10"}
    first = client.post("/v1/transactions", json=tx_dict(1), headers=key)
    replay = client.post("/v1/transactions", json=tx_dict(1), headers=key)
    assert first.status_code == replay.status_code == 202
    assert replay.content == first.content  # the first answer, byte for byte (not "duplicate")
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(topic_messages(settings)) == 1  # the replay produced nothing
    assert _stored(settings.database_dsn()) == [(key["Idempotency-Key"], 202)]


def test_same_key_other_body_is_409(client: TestClient, settings: Settings) -> None:
    key = {"Idempotency-Key": "k-1"}
    first = client.post("/v1/transactions", json=tx_dict(1), headers=key)
    other = client.post("/v1/transactions", json=tx_dict(2), headers=key)
    other_endpoint = client.post("/v1/transactions:batch", json=[tx_dict(1)], headers=key)
    assert first.status_code == 202
    for response in (other, other_endpoint):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert len(topic_messages(settings)) == 1


def test_same_key_same_transaction_in_another_key_order_and_spelling_replays(client: TestClient,
                                                                             settings: Settings) -> None:
    key = {"Idempotency-Key": "respelt", "Content-Type": "application/json"}
    body = tx_dict(1)
    respelt = json.dumps(dict(reversed(list(body.items()))), indent=2).replace(f'"{body["total_amount"]}"',
                                                                              body["total_amount"])
    first = client.post("/v1/transactions", content=json.dumps(body), headers=key)
    again = client.post("/v1/transactions", content=respelt, headers=key)
    assert first.status_code == again.status_code == 202, again.text
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert len(topic_messages(settings)) == 1


def test_keys_belong_to_their_token(client: TestClient, settings: Settings) -> None:
    other_token = bearer(settings.database_dsn(), name="another device")
    mine = client.post("/v1/transactions", json=tx_dict(1), headers={"Idempotency-Key": "shared"})
    theirs = client.post("/v1/transactions", json=tx_dict(2), headers={**other_token, "Idempotency-Key": "shared"})
    assert mine.status_code == theirs.status_code == 202
    assert "idempotent-replayed" not in theirs.headers


def test_batch_answer_is_replayed(client: TestClient, settings: Settings) -> None:
    key = {"Idempotency-Key": "batch-1"}
    body = [tx_dict(1), {"not": "a transaction"}, tx_dict(2)]
    first = client.post("/v1/transactions:batch", json=body, headers=key)
    replay = client.post("/v1/transactions:batch", json=body, headers=key)
    assert first.status_code == replay.status_code == 200
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
    assert len(topic_messages(settings)) == 2


def test_key_in_use_by_a_running_request_is_409(client: TestClient, settings: Settings) -> None:
    owner = client.post("/v1/transactions", json=tx_dict(9), headers={"Idempotency-Key": "probe"})
    assert owner.status_code == 202
    with psycopg.connect(settings.database_dsn()) as conn:  # as if another worker were still on it
        conn.execute("INSERT INTO ops.idempotency_keys (owner, key, fingerprint) "
                     "SELECT owner, 'running', fingerprint FROM ops.idempotency_keys WHERE key = 'probe'")
    busy = client.post("/v1/transactions", json=tx_dict(9), headers={"Idempotency-Key": "running"})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_key_in_progress"
    assert busy.headers["retry-after"] == "1"


def test_an_expired_key_runs_again(client: TestClient, settings: Settings) -> None:
    key = {"Idempotency-Key": "old"}
    assert client.post("/v1/transactions", json=tx_dict(1), headers=key).status_code == 202
    with psycopg.connect(settings.database_dsn()) as conn:
        conn.execute("UPDATE ops.idempotency_keys SET created_at = now() - interval '2 days'")
    fresh = client.post("/v1/transactions", json=tx_dict(2), headers=key)  # past the 24 h window: a new request
    assert fresh.status_code == 202 and "idempotent-replayed" not in fresh.headers
    assert fresh.json()["transaction_id"] == "TXN-000002"


def test_refusals_are_not_remembered(client: TestClient, settings: Settings) -> None:
    key = {"Idempotency-Key": "fix-and-retry"}
    invalid = client.post("/v1/transactions", json=tx_dict(1, total="1.234"), headers=key)
    fixed = client.post("/v1/transactions", json=tx_dict(1), headers=key)
    assert invalid.status_code == 422
    assert fixed.status_code == 202 and "idempotent-replayed" not in fixed.headers
    assert _stored(settings.database_dsn()) == [("fix-and-retry", 202)]


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_malformed_key_is_422(client: TestClient, key: str) -> None:
    response = client.post("/v1/transactions", json=tx_dict(1), headers={"Idempotency-Key": key})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "header.Idempotency-Key"
