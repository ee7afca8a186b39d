"""The API with fake token, idempotency and Kafka stores: authentication and scopes, CORS, the batch
endpoint when Kafka takes only part of a batch, HTTP metrics labels, and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from ingest_api.app import create_app
from ingest_api.auth import Principal, require_scope
from scout.settings import Settings
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens
from tests.unit.payloads import payload


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


def build(publisher: FakePublisher, tokens: FakeTokens, **overrides: Any) -> FastAPI:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, retry_after_s=7, **overrides)
    return create_app(settings, publisher=publisher, tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]


@pytest.fixture
def client(publisher: FakePublisher, tokens: FakeTokens) -> Iterator[TestClient]:
    with TestClient(build(publisher, tokens)) as test_client:
        yield test_client


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_admin_includes_every_scope_and_read_is_not_ingest(client: TestClient, tokens: FakeTokens) -> None:
    admin = client.post("/v1/transactions", json=payload(), headers=auth(tokens.add(scopes=["admin"])))
    reader = client.post("/v1/transactions", json=payload(), headers=auth(tokens.add(scopes=["read"])))
    assert admin.status_code == 202
    assert reader.status_code == 403 and reader.json()["error"]["code"] == "insufficient_scope"


def test_last_use_is_noted_at_most_once_a_minute(client: TestClient, tokens: FakeTokens) -> None:
    secret = tokens.add()
    for n in range(3):
        assert client.post("/v1/transactions", json=payload(transaction_id=f"T{n}"), headers=auth(secret)).is_success
    assert tokens.touched == [1]


def test_auth_off_is_anonymous_with_every_store(publisher: FakePublisher, tokens: FakeTokens) -> None:
    with TestClient(build(publisher, tokens, auth_required=False)) as client:
        response = client.post("/v1/transactions", json=payload(store_id="ANY-STORE"))
    assert response.status_code == 202


def test_require_scope_guards_any_route(tokens: FakeTokens, publisher: FakePublisher) -> None:
    app = build(publisher, tokens)

    @app.get("/v1/whoami")
    async def whoami(principal: Annotated[Principal, Depends(require_scope("read"))]) -> dict[str, Any]:
        return {"name": principal.name, "owner": principal.owner}

    with TestClient(app) as client:
        ok = client.get("/v1/whoami", headers=auth(tokens.add(scopes=["read"])))
        no = client.get("/v1/whoami", headers=auth(tokens.add(scopes=["ingest"])))
        anonymous = client.get("/v1/whoami")
    assert ok.json() == {"name": "fake-1", "owner": "token:1"}
    assert (no.status_code, anonymous.status_code) == (403, 401)
    with pytest.raises(ValueError, match="unknown scope"):
        require_scope("write")  # type: ignore[arg-type]


def test_batch_partly_acknowledged_is_200_with_retry_after_and_not_replayed(
        client: TestClient, tokens: FakeTokens, publisher: FakePublisher) -> None:
    secret = tokens.add()
    publisher.ack_only = 1
    batch = [payload(transaction_id="T1"), payload(transaction_id="T2")]
    headers = {**auth(secret), "Idempotency-Key": "partial"}
    first = client.post("/v1/transactions:batch", json=batch, headers=headers)
    assert first.status_code == 200 and first.headers["retry-after"] == "7"
    assert [(r["status"], r["reason"]) for r in first.json()["results"]] == [
        ("accepted", None), ("rejected", "kafka_unavailable")]
    publisher.ack_only = None
    retry = client.post("/v1/transactions:batch", json=batch, headers=headers)  # not a replay: it runs again
    assert "idempotent-replayed" not in retry.headers
    assert [r["status"] for r in retry.json()["results"]] == ["duplicate", "accepted"]
    assert [e.transaction.transaction_id for e in publisher.published] == ["T1", "T2"]


def test_cors_preflight_for_configured_origins(publisher: FakePublisher, tokens: FakeTokens) -> None:
    with TestClient(build(publisher, tokens, cors_allow_origins="https://pos.example.com")) as client:
        allowed = client.options("/v1/transactions", headers={
            "Origin": "https://pos.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})
        other = client.options("/v1/transactions", headers={
            "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
        post = client.post("/v1/transactions", json=payload(), headers={"Origin": "https://pos.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://pos.example.com"
    assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert post.status_code == 401 and post.headers["access-control-allow-origin"] == "https://pos.example.com"
    assert "retry-after" in post.headers["access-control-expose-headers"].lower()


def test_no_cors_headers_unless_configured(client: TestClient) -> None:
    response = client.options("/v1/transactions", headers={"Origin": "https://pos.example.com",
                                                           "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers


def _requests(route: str, status: str) -> float:
    return REGISTRY.get_sample_value("scout_http_requests_total",
                                     {"route": route, "method": "POST", "status": status}) or 0


def test_http_metrics_use_route_templates(client: TestClient, tokens: FakeTokens) -> None:
    before = _requests("/v1/transactions", "202"), _requests("/v1/transactions:batch", "401")
    unmatched = _requests("<unmatched>", "404")
    client.post("/v1/transactions", json=payload(), headers=auth(tokens.add()))
    client.post("/v1/transactions:batch", json=[payload()])
    client.post("/v1/no/such/thing/123")
    assert _requests("/v1/transactions", "202") == before[0] + 1
    assert _requests("/v1/transactions:batch", "401") == before[1] + 1
    assert _requests("<unmatched>", "404") == unmatched + 1
    assert REGISTRY.get_sample_value("scout_http_requests_in_flight") == 0


def test_ingest_latency_covers_every_answer(client: TestClient, tokens: FakeTokens) -> None:
    def observed(endpoint: str) -> float:
        return REGISTRY.get_sample_value("scout_ingest_request_seconds_count", {"endpoint": endpoint}) or 0

    before = observed("single"), observed("batch")
    client.post("/v1/transactions", json=payload(), headers=auth(tokens.add()))
    client.post("/v1/transactions", json={"bad": 1})
    client.post("/v1/transactions:batch", json=[payload()])
    assert (observed("single"), observed("batch")) == (before[0] + 2, before[1] + 1)


def test_authentication_comes_before_reading_the_body(client: TestClient) -> None:
    response = client.post("/v1/transactions", content=b"x" * 5_000_000)
    assert response.status_code == 401


def test_openapi_documents_the_contract_errors_and_auth(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert {"Transaction", "LineItem", "ErrorResponse", "AcceptedResponse", "BatchResponse"} <= set(schemas)
    single = doc["paths"]["/v1/transactions"]["post"]
    batch = doc["paths"]["/v1/transactions:batch"]["post"]
    assert single["requestBody"]["content"]["application/json"]["examples"]["transaction"]["value"]["items"]
    assert set(batch["requestBody"]["content"]) == {"application/json", "application/x-ndjson"}
    assert batch["requestBody"]["content"]["application/json"]["schema"]["maxItems"] == 1000
    for status in ("401", "403", "409", "413", "422", "429", "503"):
        ref = single["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorResponse"), status
    assert "Retry-After" in single["responses"]["503"]["headers"]
    assert single["security"] == [{"DeviceToken": []}]
    assert doc["components"]["securitySchemes"]["DeviceToken"]["scheme"] == "bearer"
    header = [p for p in single["parameters"] if p["name"] == "Idempotency-Key"]
    assert header and header[0]["in"] == "header" and not header[0]["required"]
