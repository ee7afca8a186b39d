"""Bronze decode: a valid envelope becomes a BronzeRow; anything else a DeadLetter with a clear reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from scout.contract import Envelope, Transaction
from streams.bronze.decode import MAX_REASON, BronzeRow, DeadLetter, Position, decode
from tests.unit.payloads import payload

POSITION = Position("pos.transactions.v1", 2, 41)
RECEIVED = datetime(2025, 1, 24, 18, 30, 5, tzinfo=UTC)


def envelope_doc(**tx_overrides: Any) -> dict[str, Any]:
    tx = Transaction.model_validate(payload(**tx_overrides))
    return orjson.loads(Envelope.wrap(tx, source="bulk", received_at=RECEIVED).to_bytes())


def dead(raw: bytes | None) -> DeadLetter:
    result = decode(raw, key=b"STORE-001", position=POSITION)
    assert isinstance(result, DeadLetter), result
    assert result.key == b"STORE-001"
    assert result.position == POSITION
    assert result.raw == (raw or b"")
    return result


def test_valid_envelope_becomes_bronze_row() -> None:
    doc = envelope_doc(ts="2025-01-25T02:30:00+08:00")
    result = decode(orjson.dumps(doc), key=b"STORE-001", position=POSITION)
    assert isinstance(result, BronzeRow)
    assert result.event_hash == doc["event_hash"]
    assert (result.source, result.store_id, result.transaction_id) == ("bulk", "STORE-001", "TXN-1")
    assert result.received_at == RECEIVED
    assert result.position == POSITION
    stored = orjson.loads(result.payload_json)
    assert stored == Transaction.model_validate(payload()).canonical()
    assert Transaction.model_validate(stored).event_hash() == result.event_hash


def test_tombstone() -> None:
    assert dead(None).reason == "empty message (tombstone)"


@pytest.mark.parametrize("raw", [b"not json", b"{", b"", b"\xff\xfe"])
def test_not_json(raw: bytes) -> None:
    assert dead(raw).reason.startswith("not JSON:")


@pytest.mark.parametrize("raw", [b"[]", b'[{"schema": "pos.transactions.v1"}]', b'"text"', b"42", b"null"])
def test_not_an_object(raw: bytes) -> None:
    assert dead(raw).reason == "not a JSON object"


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"schema": "pos.transactions.v2"}, "'pos.transactions.v2' v1"),
        ({"version": 2}, "'pos.transactions.v1' v2"),
        ({"version": "1"}, "'pos.transactions.v1' v'1'"),
        ({"schema": None}, "None v1"),
    ],
)
def test_unsupported_schema_or_version(change: dict, found: str) -> None:
    doc = {**envelope_doc(), **change}
    assert dead(orjson.dumps(doc)).reason == f"unsupported schema {found}"


def test_missing_schema_and_version() -> None:
    doc = envelope_doc()
    del doc["schema"], doc["version"]
    assert dead(orjson.dumps(doc)).reason == "unsupported schema None vNone"


@pytest.mark.parametrize("field", ["source", "event_hash", "received_at", "transaction"])
def test_missing_envelope_field(field: str) -> None:
    doc = envelope_doc()
    del doc[field]
    assert dead(orjson.dumps(doc)).reason == f"schema: {field}: Field required"


def test_missing_transaction_field() -> None:
    doc = envelope_doc()
    del doc["transaction"]["store_id"]
    assert dead(orjson.dumps(doc)).reason == "schema: transaction.store_id: Field required"


def test_none_value() -> None:
    doc = envelope_doc()
    doc["transaction"]["total_amount"] = None
    reason = dead(orjson.dumps(doc)).reason
    assert reason.startswith("schema: transaction.total_amount: ")


def test_several_errors_are_counted() -> None:
    doc = envelope_doc()
    del doc["source"]
    doc["transaction"]["items"] = []
    doc["received_at"] = "later"
    assert dead(orjson.dumps(doc)).reason.endswith("(+2 more)")


def test_tampered_event_hash() -> None:
    doc = envelope_doc()
    doc["transaction"]["total_amount"] = "51.00"
    assert dead(orjson.dumps(doc)).reason == f"event_hash mismatch for {doc['event_hash']}"


def test_malformed_event_hash() -> None:
    doc = {**envelope_doc(), "event_hash": "ABC"}
    assert dead(orjson.dumps(doc)).reason.startswith("schema: event_hash: ")


def test_reason_is_bounded() -> None:
    doc = envelope_doc()
    doc["transaction"]["customer_segment"] = "x" * 5000
    doc["transaction"]["payment_method"] = "\x00" * 5000
    assert len(dead(orjson.dumps(doc)).reason) <= MAX_REASON
    assert len(dead(b"{" + b"x" * 5000).reason) <= MAX_REASON


def _tampered() -> bytes:
    doc = envelope_doc()
    doc["transaction"]["total_amount"] = "51.00"
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "empty"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_object"),
        (orjson.dumps({**envelope_doc(), "version": 2}), "unsupported_schema"),
        (orjson.dumps({**envelope_doc(), "event_hash": "ABC"}), "invalid_envelope"),
        (_tampered(), "hash_mismatch"),
    ],
)
def test_every_reason_has_a_metric_code(raw: bytes | None, code: str) -> None:
    assert dead(raw).code == code


def test_a_row_the_database_refused_has_its_code() -> None:
    letter = DeadLetter(None, b"{}", "refused by database: CheckViolation: ...", POSITION)
    assert letter.code == "refused_by_database"
    assert DeadLetter(None, b"", "something new", POSITION).code == "other"
