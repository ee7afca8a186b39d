"""The batch endpoint's one-pass reading and its pre-encoded answer say exactly what reading every item alone and
answering with the response models says: status, body bytes, what is produced, the Idempotency-Key's fingerprint."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from ingest_api import batch
from ingest_api.app import create_app
from ingest_api.batch import encode_answer, read_batch
from ingest_api.idempotency import request_fingerprint
from ingest_api.publisher import Ack
from ingest_api.schemas import BatchItemResult, BatchResponse
from scout.contract import Envelope, Transaction
from scout.settings import Settings
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens
from tests.unit.payloads import item, payload


def _raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def _good(n: int, **overrides: Any) -> bytes:
    return _raw(payload(transaction_id=f"TXN-{n}", **overrides))


FAR = (datetime.now(UTC) + timedelta(days=30)).isoformat()
WEIRD = "St\u00f6re \u2028 \"q\" \\ / \x7f \U0001f600 <&>"  # a valid Ident that JSON encoders may spell differently

# (name, members, ndjson): each body is answered by both readings
BODIES: list[tuple[str, list[bytes]]] = [
    ("all valid", [_good(n) for n in range(5)]),
    ("number spellings", [_good(0).replace(b'"50.00"', b"50"), _good(1).replace(b'"50.00"', b"5.0E+1"),
                          _good(2).replace(b'"50.00"', b'" 50.000 "')]),
    ("repeat within the batch", [_good(1), _good(1), _raw(dict(reversed(list(payload(transaction_id="TXN-1")
                                                                              .items()))))]),
    ("odd text", [_raw(payload(transaction_id=WEIRD, store_id="STORE-001", customer_segment=WEIRD))]),
    ("a duplicate key", [_good(1), _good(2).replace(b'"qty": 2', b'"qty": 2, "qty": 3')]),
    ("an exponent", [_good(1), _good(2, total_amount="1e1")]),
    ("epoch ts", [_good(1), _good(2).replace(b'"2025-01-24T18:30:00Z"', b"1737743400")]),
    ("implausible ts", [_good(1), _good(2, ts=FAR)]),
    ("invalid field", [_good(1), _good(2, items=[item(qty="2")])]),
    ("unknown field", [_good(1), _good(2, extra="x")]),
    ("NaN", [_good(1), _good(2).replace(b'"50.00"', b"NaN")]),
    ("lone surrogate", [_good(1), _raw(payload(transaction_id="TXN-2", customer_segment="\ud800"))]),
    ("not UTF-8", [_good(1), _good(2, customer_segment="CAFE").replace(b"CAFE", b"caf\xe9")]),
    ("not an object", [_good(1), b"[1, 2]", b"7", b'"x"', b"null"]),
    ("another store", [_good(1), _good(2, store_id="STORE-999")]),
    ("one line holding two objects", [_good(1)[:-1] + b', "items": [1', b"2]}"]),
    ("two objects on one line", [_good(1) + b", " + _good(2)]),
    ("too many", [_good(n) for n in range(6)]),
    ("spaces and blank lines", [b"  " + _good(1) + b"  ", b"", b"   ", _good(2)]),
]


def _answer(members: list[bytes], *, ndjson: bool, whole: bool,
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, bytes, list[bytes]]:
    """Status, body bytes and the produced envelopes' transactions of one POST, on a fresh app."""
    if not whole:
        monkeypatch.setattr(batch, "_read_whole", lambda *args: None)
    publisher, tokens = FakePublisher(), FakeTokens()
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, rate_limit_per_s=100_000,
                        api_batch_max_items=5)
    app = create_app(settings, publisher=publisher, tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    secret = tokens.add(stores=["STORE-001"], rate=100_000)
    body = b"\n".join(members) if ndjson else b"[" + b",".join(m for m in members if m.strip()) + b"]"
    headers = {"Authorization": f"Bearer {secret}",
               "Content-Type": "application/x-ndjson" if ndjson else "application/json"}
    with TestClient(app) as client:
        response = client.post("/v1/transactions:batch", content=body, headers=headers)
    monkeypatch.undo()
    body = re.sub(rb"is after \S+ the latest", b"is after (the receipt time) the latest", response.content)
    return response.status_code, body, [e.transaction.canonical_bytes for e in publisher.published]


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
@pytest.mark.parametrize(("name", "members"), BODIES, ids=[name for name, _ in BODIES])
def test_one_pass_reading_answers_as_reading_each_item_alone(name: str, members: list[bytes], ndjson: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    alone = _answer(members, ndjson=ndjson, whole=False, monkeypatch=monkeypatch)
    whole = _answer(members, ndjson=ndjson, whole=True, monkeypatch=monkeypatch)
    assert whole == alone
    if name == "all valid":
        assert alone[0] == 200 and orjson.loads(alone[1])["accepted"] == 5


@pytest.mark.parametrize("ndjson", [False, True], ids=["array", "ndjson"])
def test_a_valid_batch_is_read_in_one_pass(ndjson: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one pass is what answers a clean batch (not the item-by-item reading behind it), and it declines
    anything it would word differently."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None)
    now = datetime.now(UTC)
    members = [_good(n) for n in range(3)]
    stripped = b"\n".join(members) if ndjson else b"[" + b",".join(members) + b"]"
    read = batch._read_whole(stripped, not ndjson, settings, now)
    assert read is not None and [i.tx.transaction_id for i in read if i.tx] == ["TXN-0", "TXN-1", "TXN-2"]
    for bad in (b'{"a": 1, "a": 2}', _good(9, total_amount="1e1"), _good(9, extra=1), b"[1]"):
        body = b"\n".join([*members, bad]) if ndjson else b"[" + b",".join([*members, bad]) + b"]"
        assert batch._read_whole(body, not ndjson, settings, now) is None


@pytest.mark.parametrize("name", ["all valid", "number spellings", "an exponent", "repeat within the batch"])
def test_the_idempotency_fingerprint_is_the_same_either_way(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    members = dict(BODIES)[name]
    body = b"[" + b",".join(members) + b"]"

    class _Ingest:
        settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None)

    whole = read_batch(_Ingest(), body, "application/json")  # type: ignore[arg-type]
    monkeypatch.setattr(batch, "_read_whole", lambda *args: None)
    alone = read_batch(_Ingest(), body, "application/json")  # type: ignore[arg-type]
    path = "/v1/transactions:batch"
    assert (request_fingerprint("POST", path, [i.content for i in whole])
            == request_fingerprint("POST", path, [i.content for i in alone]))


IDS = ["STORE-001", WEIRD, "\u00e9\u00e8", "a\u2029b", "x\x7fy", "tab\u0085", "\U0010ffff", "q\"b\\s/"]


@pytest.fixture
def envelopes() -> Iterator[list[Envelope]]:
    yield [Envelope.wrap(Transaction.model_validate(payload(store_id=i, transaction_id=i[::-1])), source="api")
           for i in IDS]


def test_the_pre_encoded_answer_is_the_response_models_json(envelopes: list[Envelope]) -> None:
    results, models = [], []
    for n, envelope in enumerate(envelopes):
        status = "accepted" if n % 2 else "duplicate"
        results.append(batch._placed(n, envelope, Ack(n % 3, 10_000 + n), status))
        tx = envelope.transaction
        models.append(BatchItemResult(index=n, status=status, event_hash=envelope.event_hash,  # type: ignore[arg-type]
                                      store_id=tx.store_id, transaction_id=tx.transaction_id, partition=n % 3,
                                      offset=10_000 + n))
    error = batch.ApiError(422, "validation_error", f"{WEIRD}: bad", details=[{"field": WEIRD, "reason": "bad"}])
    results.append(batch._rejected(len(models), error))
    models.append(BatchItemResult(index=len(models), status="rejected", reason="validation_error",
                                  message=f"{WEIRD}: bad", details=[{"field": WEIRD, "reason": "bad"}]))  # type: ignore[list-item]
    for result, model in zip(results, models, strict=True):
        assert result.json == model.model_dump_json().encode()
    expected = BatchResponse(accepted=sum(m.status == "accepted" for m in models),
                             duplicate=sum(m.status == "duplicate" for m in models), rejected=1, results=models)
    assert encode_answer(results) == expected.model_dump_json().encode()
