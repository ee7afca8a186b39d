"""The ingest door refuses what the contract does not document instead of guessing: money strings outside the
pattern, duplicate keys, a ts that is not an ISO string or not a plausible time of sale; on the single endpoint
and in both batch forms (JSON array and NDJSON), each batch member on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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


# --- a batch answers item by item in both forms -------------------------------------------------------------

LONE_SURROGATE = _raw(payload(transaction_id="TXN-BAD", customer_segment="\ud800"))  # json.dumps escapes it
assert b"\\ud800" in LONE_SURROGATE
NOT_UTF8 = _raw(payload(transaction_id="TXN-BAD", customer_segment="CAFE")).replace(b"CAFE", b"caf\xe9")


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NOT_UTF8], ids=["lone-surrogate", "not-utf8"])
def test_a_bad_member_of_a_json_array_is_rejected_alone_as_in_ndjson(client: TestClient, publisher: FakePublisher,
                                                                     bad: bytes) -> None:
    members = [_raw(payload(transaction_id="TXN-A")), bad, _raw(payload(transaction_id="TXN-B"))]
    as_array = _batch(client, members, ndjson=False)
    assert (as_array["accepted"], as_array["rejected"]) == (2, 1), as_array
    assert [r["status"] for r in as_array["results"]] == ["accepted", "rejected", "accepted"]
    assert as_array["results"][1]["reason"] == "validation_error"
    assert as_array["results"][1]["details"][0]["field"] == "(body)"
    assert [e.transaction.transaction_id for e in publisher.published] == ["TXN-A", "TXN-B"]

    as_ndjson = _batch(client, members, ndjson=True)  # the same items again: known hashes, the same verdicts

    def verdicts(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(r["index"], r.get("reason"), r.get("details"), r.get("event_hash")) for r in answer["results"]]

    assert verdicts(as_array) == verdicts(as_ndjson)


@pytest.mark.parametrize(("body", "reason"), [
    (b"[", "invalid JSON"), (b"[{}", "invalid JSON"), (b"[{} {}]", "invalid JSON"), (b"[{},]", "invalid JSON"),
    (b"[{}] x", "invalid JSON"), (b"[" * 100_000, "invalid JSON"), (b'{"a": 1}', "expected a JSON array"),
    (b"[]", "empty array"), (b" [ ] ", "empty array"),
], ids=["open", "unclosed", "no-comma", "trailing-comma", "trailing-data", "deep", "object", "empty", "empty-spaced"])
def test_an_array_whose_structure_cannot_be_followed_is_422_whole(client: TestClient, publisher: FakePublisher,
                                                                  body: bytes, reason: str) -> None:
    response = client.post("/v1/transactions:batch", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["field"] == "(body)" and detail["reason"].startswith(reason), detail
    assert publisher.published == []


# --- a key given twice is ambiguous: refused, never the last value --------------------------------------------

DUPLICATES = [
    (b'{"total_amount": "50.00", ' + _raw(payload())[1:], "total_amount"),  # twice, the last one valid
    (_raw(payload())[:-1] + b', "transaction_id": "TXN-OTHER"}', "transaction_id"),
    (_raw(payload()).replace(b'"qty": 2', b'"qty": 2, "qty": 3'), "items.0.qty"),
    (_raw(payload()).replace(b'"qty": 2', b'"qty": 2, "q\\u0074y": 2'), "items.0.qty"),  # the same key, escaped
    (_raw(payload()).replace(b'"currency": "PHP"', b'"currency": "PHP", "currency": "PHP"'), "currency"),
]


@pytest.mark.parametrize(("raw", "field"), DUPLICATES)
def test_a_duplicate_key_is_422_naming_it(client: TestClient, publisher: FakePublisher, raw: bytes,
                                          field: str) -> None:
    status, answer = _single(client, raw)
    assert status == 422, answer
    assert answer["error"]["code"] == "validation_error"
    _refused(answer, field, "duplicate key")
    assert publisher.published == []


@pytest.mark.parametrize("ndjson", [True, False], ids=["ndjson", "array"])
@pytest.mark.parametrize(("raw", "field"), DUPLICATES)
def test_a_duplicate_key_rejects_its_batch_member_alone(client: TestClient, publisher: FakePublisher, raw: bytes,
                                                        field: str, ndjson: bool) -> None:
    answer = _batch(client, [_raw(payload(transaction_id="TXN-GOOD")), raw], ndjson=ndjson)
    assert (answer["accepted"], answer["rejected"]) == (1, 1), answer
    _refused(answer["results"][1], field, "duplicate key")
    assert [e.transaction.transaction_id for e in publisher.published] == ["TXN-GOOD"]


def test_the_same_key_in_two_objects_is_not_a_duplicate(client: TestClient) -> None:
    two_lines = payload(items=[item(), item(product_id="SKU-2")], total_amount="100.00")
    status, answer = _single(client, _raw(two_lines))
    assert status == 202, answer


# --- ts: an ISO 8601 string, and a plausible time of sale ---------------------------------------------------

def _in(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(("ts", "words"), [
    (1737743400, "ISO 8601"),
    (1737743400.5, "ISO 8601"),
    ("1737743400", "ISO 8601"),
    ("0001-01-01T00:00:00Z", "before 2000-01-01T00:00:00Z"),
    ("1999-12-31T23:59:59+00:00", "before 2000-01-01T00:00:00Z"),
    ("9999-12-31T23:59:59Z", "after"),
    (_in(8), "after"),
], ids=["epoch-int", "epoch-float", "epoch-string", "year-1", "just-before-2000", "year-9999", "8-days-ahead"])
def test_a_ts_that_is_not_an_iso_string_or_not_plausible_is_422(client: TestClient, publisher: FakePublisher,
                                                                  ts: Any, words: str) -> None:
    status, answer = _single(client, _raw(payload(ts=ts)))
    assert status == 422, answer
    assert answer["error"]["message"].startswith("ts: ")
    _refused(answer, "ts", words)
    assert publisher.published == []
    result = _batch(client, [_raw(payload(transaction_id="TXN-GOOD")), _raw(payload(ts=ts))], ndjson=True)
    assert [r["status"] for r in result["results"]] == ["accepted", "rejected"]
    _refused(result["results"][1], "ts", words)


@pytest.mark.parametrize("ts", ["2000-01-01T00:00:00Z", "2025-01-24 18:30:00+08:00", _in(1)],
                         ids=["earliest", "space-separator", "a-day-ahead"])
def test_a_plausible_ts_is_accepted(client: TestClient, ts: str) -> None:
    """A day ahead passes the door: the future_timestamp guardrail (SCOUT_FUTURE_SKEW_S) judges it in silver."""
    status, answer = _single(client, _raw(payload(ts=ts)))
    assert status == 202, answer


def test_the_plausible_range_follows_the_settings(publisher: FakePublisher) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, auth_required=False,
                        ts_earliest="2020-01-01T00:00:00Z", ts_max_ahead_s=3600, future_skew_s=60)
    with TestClient(create_app(settings, publisher=publisher)) as client:  # type: ignore[arg-type]
        assert _single(client, _raw(payload(ts="2019-06-01T00:00:00Z")))[0] == 422
        assert _single(client, _raw(payload(ts=_in(0.1))))[0] == 422  # 2.4 h ahead, over 1 h
        assert _single(client, _raw(payload(ts=_in(0.01))))[0] == 202
    with pytest.raises(ValueError, match="at least future_skew_s"):
        Settings(ts_max_ahead_s=60, future_skew_s=300)


# --- Idempotency-Key: the same transaction in another spelling is the same request -------------------------

def _respelt(body: dict[str, Any]) -> bytes:
    """The same transaction: keys in reverse order, indented, money as JSON numbers in another spelling."""
    reordered = dict(reversed(list(body.items())))
    reordered["items"] = [dict(reversed(list(line.items()))) for line in body["items"]]
    text = json.dumps(reordered, indent=3)
    return text.replace('"50.00"', "5.0e1").replace('"25.00"', "25").encode()


def test_a_key_resent_with_the_same_transaction_in_another_spelling_replays(client: TestClient,
                                                                             publisher: FakePublisher) -> None:
    key = {"Idempotency-Key": "respelt-1", **JSON}
    first = client.post("/v1/transactions", content=_raw(payload()), headers=key)
    again = client.post("/v1/transactions", content=_respelt(payload()), headers=key)
    assert first.status_code == again.status_code == 202, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content
    other = client.post("/v1/transactions", content=_respelt(payload(total_amount="50.01")), headers=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(publisher.published) == 1


def test_a_batch_key_resent_in_another_spelling_or_form_replays(client: TestClient,
                                                                publisher: FakePublisher) -> None:
    bodies = [payload(transaction_id="TXN-A"), payload(transaction_id="TXN-B")]
    first = client.post("/v1/transactions:batch", content=b"[" + b",".join(_raw(b) for b in bodies) + b"]",
                        headers={"Idempotency-Key": "batch-respelt", **JSON})
    again = client.post("/v1/transactions:batch",
                        content=b"\n".join(_respelt(b).replace(b"\n", b"") for b in bodies),
                        headers={"Idempotency-Key": "batch-respelt", **NDJSON})
    assert first.status_code == again.status_code == 200, again.text
    assert again.headers.get("idempotent-replayed") == "true" and again.content == first.content
    assert len(publisher.published) == 2
