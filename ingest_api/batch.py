"""The batch endpoint's logic: split a JSON array or NDJSON body, judge every transaction on its own,
produce the new ones together, and answer per transaction.

Example::

    items = read_batch(ingest, body, content_type="application/x-ndjson")   # each item read alone
    outcome = await ingest_batch(ingest, principal, items)
    outcome.body                        # the BatchResponse as JSON: results[3].status accepted | duplicate | rejected
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import jiter
import orjson
from pydantic import TypeAdapter, ValidationError

from ingest_api.auth import Principal
from ingest_api.bodies import array_members, read_transaction
from ingest_api.errors import ApiError
from ingest_api.idempotency import Reply
from ingest_api.publisher import Ack
from ingest_api.schemas import BatchItemResult
from ingest_api.service import Ingest, authorize, count, implausible, unavailable
from scout.contract import Envelope, Transaction, spelling_errors, ts_out_of_range
from scout.settings import Settings

_TRANSACTIONS: TypeAdapter[list[Transaction]] = TypeAdapter(list[Transaction])
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/jsonlines", "application/x-jsonlines"})


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def _form(body: bytes, content_type: str | None) -> tuple[bytes, bool]:
    """The body without surrounding whitespace, and whether it is a JSON array (else NDJSON); 415 or 422 when it
    is neither or empty."""
    media = _media_type(content_type)
    if media is not None and media not in JSON_TYPES | NDJSON_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"send application/json (an array) or application/x-ndjson, not {media}")
    stripped = body.strip()
    if not stripped:
        raise ApiError(422, "validation_error", "(body): a batch needs at least one transaction",
                       details=[{"field": "(body)", "reason": "empty body"}])
    return stripped, media in JSON_TYPES if media is not None else stripped.startswith(b"[")


def _lines(stripped: bytes) -> list[bytes]:
    return [line for line in stripped.split(b"\n") if line.strip()]


def split_items(body: bytes, content_type: str | None, max_items: int) -> list[bytes]:
    """The raw JSON of each item of a batch body: the members of a JSON array, or the lines of NDJSON (blank
    lines skipped). Each is then read alone, the same way in both forms."""
    stripped, is_array = _form(body, content_type)
    items = array_members(stripped) if is_array else _lines(stripped)
    if len(items) > max_items:
        raise ApiError(413, "too_many_items", f"{len(items)} transactions exceed the limit of {max_items} per batch",
                       details=[{"field": "(body)", "reason": f"at most {max_items} transactions per batch"}])
    if not items:
        raise ApiError(422, "validation_error", "(body): a batch needs at least one transaction",
                       details=[{"field": "(body)", "reason": "empty array"}])
    return items


class _Result(NamedTuple):
    """One item's outcome: what the metrics count, and its entry in the answer as JSON."""

    status: str  # accepted | duplicate | rejected
    reason: str | None
    json: bytes


def _rejected(index: int, error: ApiError) -> _Result:
    result = BatchItemResult(index=index, status="rejected", reason=error.code, message=error.message,
                             details=error.details)  # type: ignore[arg-type]  # pydantic validates the dicts into ErrorDetail
    return _Result("rejected", error.code, result.model_dump_json().encode())


def _placed(index: int, envelope: Envelope, ack: Ack, status: str) -> _Result:
    """An accepted or duplicate item encoded straight away: the bytes ``BatchItemResult.model_dump_json`` writes
    (same keys in the same order, nulls included; tests/unit/test_batch_answer.py holds the two together)."""
    tx = envelope.transaction
    return _Result(status, None, orjson.dumps({
        "index": index, "status": status, "event_hash": envelope.event_hash, "store_id": tx.store_id,
        "transaction_id": tx.transaction_id, "partition": ack.partition, "offset": ack.offset, "reason": None,
        "message": None, "details": []}))


def encode_answer(results: list[_Result]) -> bytes:
    """The ``BatchResponse`` of these results as JSON, as its ``model_dump_json`` writes it."""
    counted = Counter(result.status for result in results)
    return b'{"accepted":%d,"duplicate":%d,"rejected":%d,"results":[%s]}' % (
        counted["accepted"], counted["duplicate"], counted["rejected"], b",".join(r.json for r in results))


class BatchItem(NamedTuple):  # a tuple: one per transaction, built cheaper than a frozen dataclass
    """One item of a batch as read at the door: its JSON text and either its transaction or why it is refused."""

    raw: bytes
    tx: Transaction | None = None
    error: ApiError | None = None

    @property
    def content(self) -> bytes:
        """What the item says: the canonical JSON of its transaction (key order and number spelling do not
        count), or its text as sent when it is refused."""
        return self.tx.canonical_bytes if self.tx is not None else self.raw


def _read(raw: bytes, settings: Settings, now: datetime) -> BatchItem:
    try:
        tx = read_transaction(raw)
    except ApiError as exc:
        return BatchItem(raw, error=exc)
    wrong = implausible(tx, settings, now)
    return BatchItem(raw, error=wrong) if wrong is not None else BatchItem(raw, tx=tx)


def _read_whole(stripped: bytes, is_array: bool, settings: Settings, now: datetime) -> list[BatchItem] | None:
    """Every item of a batch that the door admits as it is, read in one pass: the body parsed once (duplicate
    keys caught), the spellings checked, and the whole array validated by one pydantic-core call. None as soon
    as anything is off (a body or member that does not parse, a duplicate key, a spelling, an invalid or
    implausible transaction, too many items): the batch is then read item by item, and every refusal is worded
    exactly as before. An NDJSON line is parsed alone, so only lines that are each one JSON object are joined
    into the array pydantic validates."""
    try:
        if is_array:
            members = jiter.from_json(stripped, catch_duplicate_keys=True)
            array = stripped
        else:
            lines = _lines(stripped)
            members = [jiter.from_json(line, catch_duplicate_keys=True) for line in lines]
            array = b"[" + b",".join(lines) + b"]"
    except ValueError:
        return None
    if (not isinstance(members, list) or not 0 < len(members) <= settings.api_batch_max_items
            or not all(isinstance(member, dict) and not spelling_errors(member) for member in members)):
        return None
    try:
        txs = _TRANSACTIONS.validate_json(array)
    except ValidationError:
        return None
    earliest, latest = settings.ts_range(now)
    if any(ts_out_of_range(tx.ts, earliest=earliest, latest=latest) is not None for tx in txs):
        return None
    return [BatchItem(b"", tx=tx) for tx in txs]


def read_batch(ingest: Ingest, body: bytes, content_type: str | None) -> list[BatchItem]:
    """Every item of a batch body as read alone (a batch the door admits as it is: in one pass); ApiError only
    when the body as a whole cannot be read."""
    settings = ingest.settings
    now = datetime.now(UTC)
    try:
        stripped, is_array = _form(body, content_type)
        whole = _read_whole(stripped, is_array, settings, now)
        if whole is not None:
            return whole
        items = split_items(stripped, content_type, settings.api_batch_max_items)
    except ApiError as exc:
        count("batch", "rejected", exc.code)
        raise
    return [_read(raw, settings, now) for raw in items]


@dataclass
class _Plan:
    """Every item's fate before producing: rejected now, known already, or to be produced."""

    results: dict[int, _Result]
    to_send: dict[str, Envelope]  # event hash -> the first envelope with it
    waiting: list[tuple[int, Envelope, bool]]  # (index, envelope, is a repeat within this batch)


def _plan(ingest: Ingest, principal: Principal, items: list[BatchItem]) -> _Plan:
    plan = _Plan({}, {}, [])
    for index, item in enumerate(items):
        tx = item.tx
        if tx is None:
            assert item.error is not None
            plan.results[index] = _rejected(index, item.error)
            continue
        refused = authorize(principal, tx)
        if refused is not None:
            plan.results[index] = _rejected(index, refused)
            continue
        envelope = Envelope.wrap(tx, source=ingest.source)
        known = ingest.recent.get(envelope.event_hash)
        if known is not None:
            plan.results[index] = _placed(index, envelope, known, "duplicate")
            continue
        repeat = envelope.event_hash in plan.to_send
        plan.to_send.setdefault(envelope.event_hash, envelope)
        plan.waiting.append((index, envelope, repeat))
    return plan


def _count(results: list[_Result]) -> None:
    """The per-transaction counters, one increment per outcome and reason (not one per transaction)."""
    for (status, reason), n in Counter((r.status, r.reason) for r in results).items():
        outcome = "unavailable" if reason == "kafka_unavailable" else status
        count("batch", outcome, reason, n)


async def ingest_batch(ingest: Ingest, principal: Principal, items: list[BatchItem]) -> Reply:
    """Judge each transaction alone; 200 with per-item results, or 503 when Kafka took none of them."""
    plan = _plan(ingest, principal, items)
    sent = list(plan.to_send.values())
    acks = dict(zip(plan.to_send, await ingest.publisher.publish_many(sent), strict=True))
    for index, envelope, repeat in plan.waiting:
        ack = acks[envelope.event_hash]
        if isinstance(ack, Ack):
            ingest.recent.remember(envelope.event_hash, ack)
            plan.results[index] = _placed(index, envelope, ack, "duplicate" if repeat else "accepted")
        else:
            plan.results[index] = _rejected(index, unavailable(str(ack), ingest.settings.retry_after_s))
    results = [plan.results[i] for i in range(len(items))]
    _count(results)
    lost = [r for r in results if r.reason == "kafka_unavailable"]
    placed = [r for r in results if r.status != "rejected"]
    if lost and not placed:
        raise unavailable(f"Kafka acknowledged none of the {len(lost)} transactions", ingest.settings.retry_after_s)
    headers = {"Retry-After": str(ingest.settings.retry_after_s)} if lost else {}
    return Reply(200, encode_answer(results), final=not lost, headers=headers)
