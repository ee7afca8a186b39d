"""Ingest API with a fake publisher and auth off: 202 only for valid transactions, the error shape, 413 and 503."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from scout.contract import Transaction
from scout.settings import Settings
from tests.unit.fakes import FakePublisher
from tests.unit.payloads import item, payload


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def client(publisher: FakePublisher) -> Iterator[TestClient]:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{unused_port()}", produce_timeout_s=0.5,
                        database_url=None, api_max_body_bytes=4096, retry_after_s=7, auth_required=False)
    with TestClient(create_app(settings, publisher=publisher)) as test_client:  # type: ignore[arg-type]
        yield test_client


def post(client: TestClient, body: bytes | str) -> tuple[int, dict]:
    response = client.post("/v1/transactions", content=body, headers={"content-type": "application/json"})
    return response.status_code, response.json()


def test_valid_transaction_accepted(client: TestClient, publisher: FakePublisher) -> None:
    data = payload(ts="2025-01-25T02:30:00+08:00", total_amount=50)
    response = client.post("/v1/transactions", json=data)
    assert response.status_code == 202
    expected_hash = Transaction.model_validate(data).event_hash()
    assert response.json() == {"status": "accepted", "duplicate": False, "event_hash": expected_hash,
                               "store_id": "STORE-001", "transaction_id": "TXN-1", "partition": 1, "offset": 0}
    (envelope,) = publisher.published
    assert envelope.event_hash == expected_hash
    assert envelope.source == "api"
    assert envelope.hash_matches()


def test_same_transaction_twice_same_hash(client: TestClient, publisher: FakePublisher) -> None:
    first = client.post("/v1/transactions", json=payload()).json()
    second = client.post("/v1/transactions", content=json.dumps(payload(total_amount="50.0"), indent=2)).json()
    assert first["event_hash"] == second["event_hash"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert (second["partition"], second["offset"]) == (first["partition"], first["offset"])
    assert [e.event_hash for e in publisher.published] == [first["event_hash"]]  # the resend was not produced


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in payload().items() if k != "store_id"}, "store_id"),
        (payload(total_amount="12.345"), "total_amount"),
        (payload(total_amount="abc"), "total_amount"),
        (payload(items=[]), "items"),
        (payload(items=[item(qty="two")]), "items.0.qty"),
        (payload(ts="2025-01-24T18:30:00"), "ts"),
        (payload(unknown="x"), "unknown"),
        ([payload()], "(body)"),
    ],
)
def test_invalid_transaction_422(client: TestClient, publisher: FakePublisher, body: object, field: str) -> None:
    status, answer = post(client, json.dumps(body))
    assert status == 422
    error = answer["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    assert error["details"][0]["reason"]
    assert not error["details"][0]["reason"].startswith("Value error")
    assert error["message"].startswith(f"{field}: ")
    assert publisher.published == []


def test_missing_field_error_body(client: TestClient, publisher: FakePublisher) -> None:
    data = payload()
    del data["store_id"]
    status, answer = post(client, json.dumps(data))
    assert status == 422
    assert answer == {"error": {"code": "validation_error", "message": "store_id: Field required",
                                "details": [{"field": "store_id", "reason": "Field required"}]}}
    assert publisher.published == []


@pytest.mark.parametrize("body", [b"not json", b"{", b'{"store_id": "S1",}', b"\xff\xfe"])
def test_non_json_body_422(client: TestClient, publisher: FakePublisher, body: bytes) -> None:
    status, answer = post(client, body)
    assert status == 422
    assert answer["error"]["code"] == "validation_error"
    assert answer["error"]["details"][0]["field"] == "(body)"
    assert publisher.published == []


@pytest.mark.parametrize("body", [b"", b"  \n "])
def test_empty_body_422(client: TestClient, publisher: FakePublisher, body: bytes) -> None:
    status, answer = post(client, body)
    assert status == 422
    assert answer["error"]["details"] == [{"field": "(body)", "reason": "empty body"}]
    assert publisher.published == []


def test_five_megabytes_413(client: TestClient, publisher: FakePublisher) -> None:
    status, answer = post(client, b"{" + b" " * 5_000_000 + b"}")
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"
    assert publisher.published == []


def test_streamed_body_over_limit_413(client: TestClient, publisher: FakePublisher) -> None:
    chunks = [json.dumps(payload()).encode()] + [b" " * 1024] * 8
    response = client.post("/v1/transactions", content=iter(chunks),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert publisher.published == []


def test_body_just_under_limit_accepted(client: TestClient, publisher: FakePublisher) -> None:
    body = json.dumps(payload()).encode()
    body += b" " * (4096 - len(body))
    status, _ = post(client, body)
    assert status == 202
    assert len(publisher.published) == 1


def test_kafka_unavailable_503(client: TestClient, publisher: FakePublisher) -> None:
    publisher.down = True
    response = client.post("/v1/transactions", json=payload())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "kafka_unavailable"
    assert publisher.published == []


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_and_method_use_error_shape(client: TestClient) -> None:
    assert client.get("/v1/nothing").json()["error"]["code"] == "not_found"
    response = client.get("/v1/transactions")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
