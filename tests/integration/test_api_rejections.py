"""Every refusal of the ingest API on real Kafka and PostgreSQL: its status, code, field path and headers,
its metric, and that nothing refused reaches the topic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from cli.services import free_port
from ingest_api.app import create_app
from ingest_api.tokens import create_token, revoke_token, token_hash
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.conftest import eventually
from tests.factories import bearer, topic_messages, tx_dict


@contextmanager
def api(settings: Settings, **overrides: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=overrides))) as client:
        yield client


def rejections(endpoint: str, reason: str) -> float:
    return REGISTRY.get_sample_value("scout_ingest_rejections_total", {"endpoint": endpoint, "reason": reason}) or 0


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return body  # type: ignore[no-any-return]


@pytest.fixture
def ready(settings: Settings) -> Settings:
    ensure_topics(settings)
    return settings


INVALID: list[tuple[str, dict[str, Any] | list[Any] | str, str]] = [
    ("missing field", {k: v for k, v in tx_dict(1).items() if k != "store_id"}, "store_id"),
    ("three decimals", tx_dict(1, total="12.345"), "total_amount"),
    ("not a number", tx_dict(1, total="twelve"), "total_amount"),
    ("too large", tx_dict(1, total="10000000000"), "total_amount"),
    ("no items", {**tx_dict(1), "items": []}, "items"),
    ("naive timestamp", {**tx_dict(1), "ts": "2026-01-05T10:00:00"}, "ts"),
    ("unknown field", {**tx_dict(1), "coupon": "X"}, "coupon"),
    ("qty not an integer", {**tx_dict(1), "items": [{**tx_dict(1)["items"][0], "qty": "2"}]}, "items.0.qty"),
    ("qty a boolean", {**tx_dict(1), "items": [{**tx_dict(1)["items"][0], "qty": True}]}, "items.0.qty"),
    ("unnamed product", {**tx_dict(1), "items": [{"qty": 1, "unit_price": "1.00"}]}, "items.0"),
    ("bad currency", {**tx_dict(1), "currency": "pesos"}, "currency"),
    ("an array", [tx_dict(1)], "(body)"),
    ("not JSON", "{not json", "(body)"),
    ("empty body", "", "(body)"),
]


@pytest.mark.parametrize(("case", "body", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_transaction_is_422_with_field_path(ready: Settings, case: str, body: Any, field: str) -> None:
    before = rejections("single", "validation_error")
    with api(ready) as client:
        content = body if isinstance(body, str) else None
        response = client.post("/v1/transactions", headers=bearer(ready.database_dsn()),
                               **({"content": content} if content is not None else {"json": body}))
    details = error(response, 422, "validation_error")["details"]
    assert details[0]["field"] == field and details[0]["reason"], details
    assert rejections("single", "validation_error") == before + 1
    assert topic_messages(ready) == []


def test_oversized_bodies_are_413(ready: Settings) -> None:
    auth = bearer(ready.database_dsn())
    before = [rejections("single", "payload_too_large"), rejections("batch", "payload_too_large"),
              rejections("batch", "too_many_items")]
    with api(ready, api_max_body_bytes=2048, api_batch_max_bytes=4096, api_batch_max_items=3) as client:
        single = client.post("/v1/transactions", content=b"{" + b" " * 3000 + b"}", headers=auth)
        streamed = client.post("/v1/transactions", content=iter([b"{", b" " * 1500, b" " * 1500, b"}"]),
                               headers=auth)
        batch = client.post("/v1/transactions:batch", content=b"[" + b" " * 5000 + b"]", headers=auth)
        items = client.post("/v1/transactions:batch", json=[tx_dict(n) for n in range(4)], headers=auth)
    error(single, 413, "payload_too_large")
    error(streamed, 413, "payload_too_large")
    error(batch, 413, "payload_too_large")
    assert "limit of 3" in error(items, 413, "too_many_items")["message"]
    assert [rejections("single", "payload_too_large"), rejections("batch", "payload_too_large"),
            rejections("batch", "too_many_items")] == [before[0] + 2, before[1] + 1, before[2] + 1]
    assert topic_messages(ready) == []


def test_batch_body_that_is_no_batch(ready: Settings) -> None:
    auth = bearer(ready.database_dsn())
    with api(ready) as client:
        text = client.post("/v1/transactions:batch", content=b"hello", headers={**auth, "content-type": "text/plain"})
        empty = client.post("/v1/transactions:batch", json=[], headers=auth)
        an_object = client.post("/v1/transactions:batch", json=tx_dict(1), headers=auth)
        broken = client.post("/v1/transactions:batch", content=b"[{",
                             headers={**auth, "content-type": "application/json"})
    error(text, 415, "unsupported_media_type")
    assert error(empty, 422, "validation_error")["details"] == [{"field": "(body)", "reason": "empty array"}]
    error(an_object, 422, "validation_error")
    error(broken, 422, "validation_error")


def test_authentication_refusals_are_401(ready: Settings) -> None:
    dsn = ready.database_dsn()
    revoked = create_token(dsn, name="revoked", scopes=["ingest"], store_ids=None)
    revoke_token(dsn, revoked.id)
    expired = create_token(dsn, name="expired", scopes=["ingest"], store_ids=None, expires_in=timedelta(days=1))
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE ops.device_tokens SET expires_at = now() - interval '1 second' WHERE id = %s",
                     [expired.id])
    headers: dict[str, dict[str, str]] = {
        "none": {},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "malformed": {"Authorization": "Bearer not-a-scout-token"},
        "unknown": {"Authorization": "Bearer sct_" + "A" * 43},
        "revoked": {"Authorization": f"Bearer {revoked.secret}"},
        "expired": {"Authorization": f"Bearer {expired.secret}"},
    }
    with api(ready) as client:
        for name, header in headers.items():
            response = client.post("/v1/transactions", json=tx_dict(1), headers=header)
            error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer"), name
    assert topic_messages(ready) == []


def test_scope_store_and_device_refusals_are_403(ready: Settings) -> None:
    dsn = ready.database_dsn()
    reader = bearer(dsn, scopes=("read",))
    store_one = bearer(dsn, stores=["STORE-001"])
    pos17 = bearer(dsn, stores=["STORE-001"], device="POS-17")
    before = rejections("single", "store_forbidden"), rejections("single", "device_mismatch")
    with api(ready) as client:
        scope = client.post("/v1/transactions", json=tx_dict(1), headers=reader)
        store = client.post("/v1/transactions", json=tx_dict(1, store="STORE-002"), headers=store_one)
        device = client.post("/v1/transactions", json=tx_dict(1, device_id="POS-18"), headers=pos17)
        own_device = client.post("/v1/transactions", json=tx_dict(2, device_id="POS-17"), headers=pos17)
        own_store = client.post("/v1/transactions", json=tx_dict(3), headers=store_one)
    error(scope, 403, "insufficient_scope")
    assert error(store, 403, "store_forbidden")["details"] == [
        {"field": "store_id", "reason": "not a store of this token"}]
    assert error(device, 403, "device_mismatch")["details"][0]["field"] == "device_id"
    assert (rejections("single", "store_forbidden"), rejections("single", "device_mismatch")) == (
        before[0] + 1, before[1] + 1)
    assert own_device.status_code == own_store.status_code == 202
    assert sorted(m["transaction"]["transaction_id"] for _, m in topic_messages(ready)) == [
        "TXN-000002", "TXN-000003"]


def test_rate_limit_is_429_with_retry_after(ready: Settings) -> None:
    slow = bearer(ready.database_dsn(), rate=0.1)  # a burst of one, then one request per 10 s
    other = bearer(ready.database_dsn())
    with api(ready) as client:
        first = client.post("/v1/transactions", json=tx_dict(1), headers=slow)
        limited = client.post("/v1/transactions", json=tx_dict(2), headers=slow)
        batch = client.post("/v1/transactions:batch", json=[tx_dict(3)], headers=slow)
        unaffected = client.post("/v1/transactions", json=tx_dict(4), headers=other)
    assert first.status_code == 202 and unaffected.status_code == 202
    for response in (limited, batch):
        error(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 10
    assert len(topic_messages(ready)) == 2


def test_repeated_authentication_failures_are_429(ready: Settings) -> None:
    good = bearer(ready.database_dsn())
    with api(ready, auth_failure_burst=3, auth_failure_rate_per_s=0.01) as client:
        failures = [client.post("/v1/transactions", json=tx_dict(1), headers={"Authorization": "Bearer nope"})
                    for _ in range(3)]
        blocked = client.post("/v1/transactions", json=tx_dict(1), headers={"Authorization": "Bearer nope"})
        also_blocked = client.post("/v1/transactions", json=tx_dict(1), headers=good)  # same client address
    assert [r.status_code for r in failures] == [401] * 3
    for response in (blocked, also_blocked):
        error(response, 429, "too_many_auth_failures")
        assert int(response.headers["retry-after"]) >= 1
    assert topic_messages(ready) == []


def test_kafka_unreachable_is_503_for_both_endpoints(database: str) -> None:
    settings = Settings(database_url=database, kafka_bootstrap=f"127.0.0.1:{free_port()}",  # type: ignore[arg-type]
                        produce_timeout_s=0.5, retry_after_s=4)
    auth = bearer(database)
    with api(settings) as client:
        single = client.post("/v1/transactions", json=tx_dict(1), headers=auth)
        batch = client.post("/v1/transactions:batch", json=[tx_dict(1), {"bad": 1}], headers=auth)
    for response in (single, batch):
        error(response, 503, "kafka_unavailable")
        assert response.headers["retry-after"] == "4"


def test_token_store_unreachable_is_503(kafka_bootstrap: str) -> None:
    settings = Settings(database_url=f"postgresql://scout@127.0.0.1:{free_port()}/none",  # type: ignore[arg-type]
                        kafka_bootstrap=kafka_bootstrap, retry_after_s=6)
    with api(settings) as client:
        response = client.post("/v1/transactions", json=tx_dict(1),
                               headers={"Authorization": "Bearer sct_" + "B" * 43})
    error(response, 503, "auth_unavailable")
    assert response.headers["retry-after"] == "6"


def test_a_revoked_token_is_refused_within_a_second(ready: Settings) -> None:
    """The API keeps the token in memory; the revocation's notification drops it (migration 0023)."""
    dsn = ready.database_dsn()
    token = create_token(dsn, name="pos-42", scopes=["ingest"], store_ids=None)
    header = {"Authorization": f"Bearer {token.secret}"}
    answers: list[tuple[float, int]] = []
    with api(ready) as client:
        cache = client.app.state.authenticator.tokens  # type: ignore[attr-defined]
        eventually(lambda: cache.listening, until=bool, timeout=10, what="the token listener")
        before = client.post("/v1/transactions", json=tx_dict(1), headers=header)
        assert token_hash(token.secret) in cache._entries  # answered from memory from now on
        assert revoke_token(dsn, token.id)
        revoked_at = time.monotonic()

        def post() -> httpx.Response:
            sent = time.monotonic() - revoked_at
            answer = client.post("/v1/transactions", json=tx_dict(2 + len(answers)), headers=header)
            answers.append((sent, answer.status_code))
            return answer

        after = eventually(post, until=lambda a: a.status_code == 401, timeout=1.0, interval=0.01,
                           what="the revoked token to be refused")
    assert before.status_code == 202
    error(after, 401, "unauthorized")
    assert all(sent < 1.0 for sent, status in answers if status != 401), answers
    assert not revoke_token(dsn, token.id)  # already revoked
    assert len(topic_messages(ready)) == 1 + sum(status == 202 for _, status in answers)
