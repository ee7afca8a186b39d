"""The ingest door refuses what the contract does not document instead of guessing: money strings outside the
pattern, on the single endpoint and in both batch forms (JSON array and NDJSON), each batch member on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from scout.contract import ITEM_MONEY_FIELDS, MONEY_FIELDS, MONEY_SCHEMA, Transaction
from scout.settings import Settings
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens
from tests.unit.payloads import item, payload

NDJSON = {"content-type": "application/x-ndjson"}
JSON = {"content-type": "application/json"}


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def client(publisher: FakePublisher) -> Iterator[TestClient]:
    tokens = FakeTokens()
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, rate_limit_per_s=100_000)
    app = create_app(settings, publisher=publisher, tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {tokens.add(rate=100_000)}"}) as test_client:
        yield test_client


def _raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def _single(client: TestClient, raw: bytes) -> tuple[int, dict[str, Any]]:
    response = client.post("/v1/transactions", content=raw, headers=JSON)
    return response.status_code, response.json()


def _batch(client: TestClient, members: list[bytes], *, ndjson: bool) -> dict[str, Any]:
    body = b"\n".join(members) if ndjson else b"[" + b",".join(members) + b"]"
    response = client.post("/v1/transactions:batch", content=body, headers=NDJSON if ndjson else JSON)
    assert response.status_code == 200, response.text
    return response.json()


def _refused(answer: dict[str, Any], field: str, words: str) -> None:
    error = answer.get("error", answer)
    assert error["details"][0]["field"] == field, error
    assert words in error["details"][0]["reason"], error


# --- money: the documented string pattern has no exponent ---------------------------------------------------

EXPONENTS = [
    (payload(total_amount="1e1"), "total_amount"),
    (payload(total_amount="1E2"), "total_amount"),
    (payload(total_amount="1_000"), "total_amount"),
    (payload(total_amount="50.00", items=[item(unit_price="2.5e1")]), "items.0.unit_price"),
    (payload(items=[item(line_amount="5E+1")]), "items.0.line_amount"),
]


@pytest.mark.parametrize(("body", "field"), EXPONENTS)
def test_money_string_with_an_exponent_is_422_naming_the_field(client: TestClient, publisher: FakePublisher,
                                                                body: dict[str, Any], field: str) -> None:
    status, answer = _single(client, _raw(body))
    assert status == 422, answer
    assert answer["error"]["code"] == "validation_error"
    assert answer["error"]["message"].startswith(f"{field}: ")
    _refused(answer, field, "no exponent")
    assert publisher.published == []


@pytest.mark.parametrize("ndjson", [True, False], ids=["ndjson", "array"])
@pytest.mark.parametrize(("body", "field"), EXPONENTS)
def test_money_string_with_an_exponent_is_rejected_in_a_batch_alone(client: TestClient, publisher: FakePublisher,
                                                                     body: dict[str, Any], field: str,
                                                                     ndjson: bool) -> None:
    good = payload(transaction_id="TXN-GOOD")
    answer = _batch(client, [_raw(good), _raw(body)], ndjson=ndjson)
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["results"][1]["status"] == "rejected"
    _refused(answer["results"][1], field, "no exponent")
    assert [e.transaction.transaction_id for e in publisher.published] == ["TXN-GOOD"]


@pytest.mark.parametrize("spelling", [b"50", b"50.0", b"5e1", b"5.0E+1", b'"50"', b'"50.00"', b'" 50.000 "'])
def test_allowed_money_spellings_are_one_value(client: TestClient, publisher: FakePublisher, spelling: bytes) -> None:
    """A JSON number in any JSON spelling (the contract allows a number) and a string within the pattern."""
    raw = _raw(payload(total_amount="TOTAL")).replace(b'"TOTAL"', spelling)
    status, answer = _single(client, raw)
    assert status == 202, answer
    assert answer["event_hash"] == Transaction.model_validate(payload()).event_hash()
    assert publisher.published[0].transaction.total_amount == 50


def test_the_checked_money_fields_are_the_money_fields_of_the_contract() -> None:
    def money(schema: dict[str, Any]) -> set[str]:
        return {name for name, field in schema["properties"].items()
                if MONEY_SCHEMA["anyOf"][0] in field.get("anyOf", [])
                or any(MONEY_SCHEMA["anyOf"][0] in f.get("anyOf", []) for f in field.get("anyOf", []))}

    schema = Transaction.model_json_schema()
    assert money(schema) == set(MONEY_FIELDS)
    assert money(schema["$defs"]["LineItem"]) == set(ITEM_MONEY_FIELDS)
