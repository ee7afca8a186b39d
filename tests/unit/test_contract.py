"""The pos.transactions.v1 contract: validation, canonical event hash and the envelope."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from scout.contract import MAX_ITEMS, Envelope, Transaction
from tests.unit.payloads import item, payload


def event_hash(data: dict) -> str:
    return Transaction.model_validate(data).event_hash()


def rejected_fields(data: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as info:
        Transaction.model_validate(data)
    return [err["loc"] for err in info.value.errors()]


def test_hash_ignores_key_order() -> None:
    data = payload()
    reordered = {key: data[key] for key in reversed(list(data))}
    reordered["items"] = [{key: value for key, value in reversed(list(data["items"][0].items()))}]
    assert list(reordered) != list(data)
    assert event_hash(reordered) == event_hash(data)


def test_hash_ignores_decimal_spelling() -> None:
    spellings = [
        payload(total_amount="50.0", items=[item(unit_price="25.0", line_amount="50")]),
        payload(total_amount="50.00", items=[item(unit_price="25.00", line_amount="50.00")]),
        payload(total_amount=50, items=[item(unit_price=25.0, line_amount=50.0)]),
    ]
    assert len({event_hash(data) for data in spellings}) == 1


@pytest.mark.parametrize("amount", ["1.5", "1.50", 1.5, " 1.50 ", "1.500"])
def test_money_spellings_hash_alike(amount: object) -> None:
    data = payload(total_amount=amount, items=[item(qty=1, unit_price="1.5", line_amount=None)])
    assert Transaction.model_validate(data).canonical()["total_amount"] == "1.50"
    assert event_hash(data) == event_hash(payload(total_amount="1.50", items=data["items"]))


def test_json_number_hashes_like_string() -> None:
    as_number = json.dumps(payload(total_amount=1.5, items=[item(qty=1, unit_price=1.5, line_amount=None)]))
    as_text = json.dumps(payload(total_amount="1.50", items=[item(qty=1, unit_price="1.50", line_amount=None)]))
    assert Transaction.model_validate_json(as_number).event_hash() == (
        Transaction.model_validate_json(as_text).event_hash()
    )


def test_negative_zero_hashes_like_zero() -> None:
    """-0.00 and 0.00 are the same amount, so they must be the same event."""
    zero = payload(total_amount="0.00", items=[item(unit_price="0.00", line_amount="0.00")])
    minus_zero = payload(total_amount="-0.00", items=[item(unit_price="-0.00", line_amount="-0.00")])
    assert event_hash(minus_zero) == event_hash(zero)


def test_hash_ignores_timestamp_offset() -> None:
    utc = payload(ts="2025-01-24T18:30:00Z")
    manila = payload(ts="2025-01-25T02:30:00+08:00")
    assert Transaction.model_validate(manila).canonical()["ts"] == "2025-01-24T18:30:00Z"
    assert event_hash(manila) == event_hash(utc)


@pytest.mark.parametrize(
    "change",
    [
        {"total_amount": "50.01"},
        {"transaction_id": "TXN-2"},
        {"store_id": "STORE-002"},
        {"ts": "2025-01-24T18:30:01Z"},
        {"items": [item(qty=1, unit_price="50.00")]},
    ],
)
def test_different_content_different_hash(change: dict) -> None:
    assert event_hash(payload(**change)) != event_hash(payload())


def test_hash_is_sha256_of_sorted_canonical_json() -> None:
    tx = Transaction.model_validate(payload())
    assert len(tx.event_hash()) == 64
    assert tx.canonical_json() == orjson.dumps(orjson.loads(tx.canonical_json()), option=orjson.OPT_SORT_KEYS)
    assert "device_id" not in tx.canonical()  # nulls are left out


@pytest.mark.parametrize("amount", ["1.005", 1.005, "0.001"])
def test_money_with_three_decimals_rejected(amount: object) -> None:
    assert rejected_fields(payload(total_amount=amount)) == [("total_amount",)]


@pytest.mark.parametrize("amount", [True, False, "NaN", "abc", "Infinity", "", None, [], "10000000000.00"])
def test_money_not_a_decimal_rejected(amount: object) -> None:
    assert rejected_fields(payload(total_amount=amount)) == [("total_amount",)]


def test_nan_json_number_rejected() -> None:
    body = json.dumps(payload(total_amount=float("nan")))
    assert "NaN" in body
    with pytest.raises(ValidationError):
        Transaction.model_validate_json(body)


@pytest.mark.parametrize("ts", ["2025-01-24T18:30:00", "2025-01-24 18:30:00", "yesterday"])
def test_timestamp_without_offset_rejected(ts: str) -> None:
    assert rejected_fields(payload(ts=ts)) == [("ts",)]


def test_items_empty_rejected() -> None:
    assert rejected_fields(payload(items=[])) == [("items",)]


def test_items_over_limit_rejected() -> None:
    line = item(qty=1, unit_price="0.10", line_amount="0.10")
    assert Transaction.model_validate(payload(total_amount="50.00", items=[line] * MAX_ITEMS))
    assert rejected_fields(payload(total_amount="50.10", items=[line] * (MAX_ITEMS + 1))) == [("items",)]


def test_item_needs_product_id_or_name() -> None:
    assert Transaction.model_validate(payload(items=[item(product_name=None)])).items[0].product_id == "SKU-1"
    assert Transaction.model_validate(payload(items=[item(product_id=None)])).items[0].product_name
    assert rejected_fields(payload(items=[item(product_id=None, product_name=None)])) == [("items", 0)]


def test_item_quantity_boolean_rejected() -> None:
    """A JSON ``true`` is not a quantity, just as it is not an amount."""
    assert rejected_fields(payload(items=[item(qty=True, line_amount="25.00")])) == [("items", 0, "qty")]


@pytest.mark.parametrize("where", ["top", "item"])
def test_unknown_field_rejected(where: str) -> None:
    if where == "top":
        data, loc = payload(discount="1.00"), ("discount",)
    else:
        data, loc = payload(items=[item(colour="red")]), ("items", 0, "colour")
    assert rejected_fields(data) == [loc]


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        (payload(customer_segment="fam\x00ily"), ("customer_segment",)),
        (payload(items=[item(product_name="Co\x00la")]), ("items", 0, "product_name")),
        (payload(store_id="STORE\x00-1"), ("store_id",)),
        (payload(transaction_id="TXN\n1"), ("transaction_id",)),
    ],
)
def test_control_characters_rejected(data: dict, loc: tuple) -> None:
    assert rejected_fields(data) == [loc]


@pytest.mark.parametrize("currency", ["php", "PESO", "P1P"])
def test_currency_must_be_three_capitals(currency: str) -> None:
    assert rejected_fields(payload(currency=currency)) == [("currency",)]


def test_envelope_round_trip() -> None:
    tx = Transaction.model_validate(payload(ts="2025-01-25T02:30:00+08:00", total_amount="50"))
    received = datetime(2025, 1, 24, 18, 30, 5, 123456, tzinfo=UTC)
    envelope = Envelope.wrap(tx, source="api", received_at=received)
    raw = envelope.to_bytes()
    decoded = Envelope.from_bytes(raw)
    assert decoded == envelope
    assert decoded.hash_matches()
    assert decoded.event_hash == tx.event_hash()
    assert decoded.received_at == received
    assert decoded.to_bytes() == raw
    body = orjson.loads(raw)
    assert body["schema"] == "pos.transactions.v1"
    assert body["version"] == 1
    assert body["received_at"] == "2025-01-24T18:30:05.123456Z"
    assert body["transaction"]["total_amount"] == "50.00"


def test_envelope_hash_mismatch_detected() -> None:
    envelope = Envelope.wrap(Transaction.model_validate(payload()), source="simulator")
    body = orjson.loads(envelope.to_bytes())
    body["transaction"]["total_amount"] = "49.00"
    assert not Envelope.from_bytes(orjson.dumps(body)).hash_matches()


def test_envelope_from_bytes_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        Envelope.from_bytes(b"not json")
    with pytest.raises(ValidationError):
        Envelope.from_bytes(b'{"schema": "pos.transactions.v1", "version": 2}')


def test_a_timestamp_that_overflows_in_utc_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="timestamp out of range"):
        Transaction.model_validate(payload(ts="0001-01-01T00:00:00+00:01"))
