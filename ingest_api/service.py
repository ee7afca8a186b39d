"""Ingest logic outside the routes: validate, hash, publish; map failures to API errors."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ingest_api.errors import ApiError, invalid
from ingest_api.publisher import Publisher
from observability.metrics import INGEST_REQUESTS
from scout.contract import Envelope, Source, Transaction
from scout.errors import PublishUnavailable


@dataclass(frozen=True)
class Accepted:
    event_hash: str
    store_id: str
    transaction_id: str
    partition: int
    offset: int


def parse_transaction(body: bytes) -> Transaction:
    if not body.strip():
        raise ApiError(422, "validation_error", "(body): a JSON transaction is required",
                       details=[{"field": "(body)", "reason": "empty body"}])
    try:
        return Transaction.model_validate_json(body)
    except ValidationError as exc:
        raise invalid(exc) from None


async def ingest_one(publisher: Publisher, tx: Transaction, *, source: Source, retry_after_s: int) -> Accepted:
    envelope = Envelope.wrap(tx, source=source)
    try:
        ack = await publisher.publish(envelope)
    except PublishUnavailable as exc:
        INGEST_REQUESTS.labels("single", "unavailable").inc()
        raise ApiError(503, "kafka_unavailable", f"{exc}; retry later, the event was not accepted",
                       headers={"Retry-After": str(retry_after_s)}) from None
    INGEST_REQUESTS.labels("single", "accepted").inc()
    return Accepted(envelope.event_hash, tx.store_id, tx.transaction_id, ack.partition, ack.offset)
