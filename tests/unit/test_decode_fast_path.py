"""The canonical fast path of bronze decoding: hash-true envelopes land as they are; others are validated."""

from __future__ import annotations

import hashlib

import orjson

from quality.rules import Thresholds
from scout.settings import Settings
from streams.bronze.decode import BronzeRow, DeadLetter, Position, decode
from streams.silver.plan import ClaimedRow, build_plan

POS = Position("t", 0, 1)


def _document(tx: dict, *, event_hash: str | None = None) -> bytes:  # type: ignore[type-arg]
    canonical = orjson.dumps(tx, option=orjson.OPT_SORT_KEYS)
    return orjson.dumps({"schema": "pos.transactions.v1", "version": 1, "source": "api",
                         "received_at": "2026-01-05T10:00:00Z",
                         "event_hash": event_hash or hashlib.sha256(canonical).hexdigest(), "transaction": tx})


def test_hash_true_but_contract_breaking_content_lands_then_silver_quarantines_it() -> None:
    row = decode(_document({"store_id": "S", "transaction_id": "T", "items": []}), key=None, position=POS)
    assert isinstance(row, BronzeRow) and (row.store_id, row.transaction_id) == ("S", "T")
    claimed = ClaimedRow(1, row.event_hash, row.source, row.payload_json, row.received_at, "S", "T")
    plan = build_plan([claimed], Thresholds.from_settings(Settings()))
    assert [q.reasons for q in plan.quarantined] == [("invalid_payload",)]


def test_a_wrong_hash_takes_the_validating_path_and_is_dead_lettered() -> None:
    result = decode(_document({"store_id": "S", "transaction_id": "T", "items": []}, event_hash="0" * 64),
                    key=None, position=POS)
    assert isinstance(result, DeadLetter) and result.reason.startswith("schema: transaction")


def test_an_envelope_with_an_unknown_key_takes_the_validating_path_and_is_dead_lettered() -> None:
    from scout.contract import Envelope, Transaction
    from tests.unit.payloads import payload

    document = orjson.loads(Envelope.wrap(Transaction.model_validate(payload()), source="api").to_bytes())
    document["extra\x00key"] = 1
    result = decode(orjson.dumps(document), key=None, position=POS)
    assert isinstance(result, DeadLetter) and "extra\\x00key" in result.reason and "\x00" not in result.reason
