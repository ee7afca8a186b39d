"""The batch endpoint's logic: split a JSON array or NDJSON body, judge every transaction on its own,
produce the new ones together, and answer per transaction.

Example::

    items = read_batch(ingest, body, content_type="application/x-ndjson")   # each item read alone
    outcome = await ingest_batch(ingest, principal, items)
    outcome.body.results[3].status      # "accepted" | "duplicate" | "rejected" (with reason)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ingest_api.auth import Principal
from ingest_api.bodies import array_members, read_transaction
from ingest_api.errors import ApiError
from ingest_api.idempotency import Reply
from ingest_api.publisher import Ack
from ingest_api.schemas import BatchItemResult, BatchResponse
from ingest_api.service import Ingest, authorize, count, implausible, unavailable
from scout.contract import Envelope, Transaction
from scout.settings import Settings

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/jsonlines", "application/x-jsonlines"})


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def split_items(body: bytes, content_type: str | None, max_items: int) -> list[bytes]:
    """The raw JSON of each item of a batch body: the members of a JSON array, or the lines of NDJSON (blank
    lines skipped). Each is then read alone, the same way in both forms."""
    media = _media_type(content_type)
    if media is not None and media not in JSON_TYPES | NDJSON_TYPES:
        raise ApiError(415, "unsupported_media_type",
                       f"send application/json (an array) or application/x-ndjson, not {media}")
    stripped = body.strip()
    if not stripped:
        raise ApiError(422, "validation_error", "(body): a batch needs at least one transaction",
                       details=[{"field": "(body)", "reason": "empty body"}])
    is_array = media in JSON_TYPES if media is not None else stripped.startswith(b"[")
    items = array_members(stripped) if is_array else [line for line in stripped.split(b"\n") if line.strip()]
    if len(items) > max_items:
        raise ApiError(413, "too_many_items", f"{len(items)} transactions exceed the limit of {max_items} per batch",
                       details=[{"field": "(body)", "reason": f"at most {max_items} transactions per batch"}])
    if not items:
        raise ApiError(422, "validation_error", "(body): a batch needs at least one transaction",
                       details=[{"field": "(body)", "reason": "empty array"}])
    return items


def _rejected(index: int, error: ApiError) -> BatchItemResult:
    return BatchItemResult(index=index, status="rejected", reason=error.code, message=error.message,
                           details=error.details)  # type: ignore[arg-type]  # pydantic validates the dicts into ErrorDetail


def _placed(index: int, envelope: Envelope, ack: Ack, status: str) -> BatchItemResult:
    tx = envelope.transaction
    return BatchItemResult(index=index, status=status, event_hash=envelope.event_hash,  # type: ignore[arg-type]  # status: accepted|duplicate, validated by pydantic
                           store_id=tx.store_id, transaction_id=tx.transaction_id, partition=ack.partition,
                           offset=ack.offset)


@dataclass(frozen=True)
class BatchItem:
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


def read_batch(ingest: Ingest, body: bytes, content_type: str | None) -> list[BatchItem]:
    """Every item of a batch body read alone; ApiError only when the body as a whole cannot be read."""
    try:
        items = split_items(body, content_type, ingest.settings.api_batch_max_items)
    except ApiError as exc:
        count("batch", "rejected", exc.code)
        raise
    now = datetime.now(UTC)
    return [_read(raw, ingest.settings, now) for raw in items]


@dataclass
class _Plan:
    """Every item's fate before producing: rejected now, known already, or to be produced."""

    results: dict[int, BatchItemResult]
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


def _count(results: list[BatchItemResult]) -> None:
    for result in results:
        if result.status == "rejected":
            outcome = "unavailable" if result.reason == "kafka_unavailable" else "rejected"
            count("batch", outcome, result.reason)
        else:
            count("batch", result.status)


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
    response = BatchResponse(accepted=sum(r.status == "accepted" for r in results),
                             duplicate=sum(r.status == "duplicate" for r in results),
                             rejected=sum(r.status == "rejected" for r in results), results=results)
    headers = {"Retry-After": str(ingest.settings.retry_after_s)} if lost else {}
    return Reply(200, response, final=not lost, headers=headers)
