"""Ingest logic outside the routes: validate, authorise, hash, skip known hashes, publish, count.

Example::

    ingest = Ingest(settings, publisher, RecentHashes(max_size=100_000, ttl_s=600))
    tx = ingest.read(body)                            # the transaction, or raises ApiError 422
    outcome = await ingest.one(principal, tx)         # 202 AcceptedResponse, or raises ApiError
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from prometheus_client import Counter

from ingest_api.auth import Principal
from ingest_api.bodies import read_transaction
from ingest_api.errors import ApiError
from ingest_api.idempotency import Reply
from ingest_api.publisher import Ack, Publisher
from ingest_api.recent import RecentHashes
from observability.metrics import INGEST_REJECTIONS, INGEST_REQUESTS
from scout.contract import Envelope, Source, Transaction, ts_out_of_range
from scout.errors import PublishUnavailable
from scout.settings import Settings


def count(endpoint: str, outcome: str, reason: str | None = None, n: int = 1) -> None:
    """Per-transaction counters: outcome accepted | duplicate | rejected | unavailable, and why."""
    if n <= 0:
        return
    _labelled(INGEST_REQUESTS, endpoint, outcome).inc(n)
    if reason is not None:
        _labelled(INGEST_REJECTIONS, endpoint, reason).inc(n)


@functools.cache
def _labelled(metric: Counter, endpoint: str, label: str) -> Counter:
    """The counter's child for these labels (endpoints x outcomes or reason codes: a fixed, small set)."""
    return metric.labels(endpoint, label)


def parse_transaction(body: bytes) -> Transaction:
    if not body.strip():
        raise ApiError(422, "validation_error", "(body): a JSON transaction is required",
                       details=[{"field": "(body)", "reason": "empty body"}])
    return read_transaction(body)


def authorize(principal: Principal, tx: Transaction) -> ApiError | None:
    """The token's store and device scope; None when the transaction is allowed."""
    if not principal.allows_store(tx.store_id):
        return ApiError(403, "store_forbidden",
                        f"token {principal.name!r} may not post for store_id={tx.store_id!r} "
                        f"(transaction_id={tx.transaction_id!r})",
                        details=[{"field": "store_id", "reason": "not a store of this token"}])
    if not principal.allows_device(tx.device_id):
        return ApiError(403, "device_mismatch",
                        f"token {principal.name!r} belongs to device {principal.device_id!r}, not "
                        f"device_id={tx.device_id!r} (transaction_id={tx.transaction_id!r})",
                        details=[{"field": "device_id", "reason": "not the device of this token"}])
    return None


def implausible(tx: Transaction, settings: Settings, now: datetime) -> ApiError | None:
    """422 when ``ts`` is outside the plausible times of sale (``Settings.ts_range``); None when inside."""
    earliest, latest = settings.ts_range(now)
    reason = ts_out_of_range(tx.ts, earliest=earliest, latest=latest)
    if reason is None:
        return None
    return ApiError(422, "validation_error", f"ts: {reason}", details=[{"field": "ts", "reason": reason}])


def unavailable(message: str, retry_after_s: int) -> ApiError:
    return ApiError(503, "kafka_unavailable", f"{message}; retry later, nothing was accepted",
                    headers={"Retry-After": str(retry_after_s)})


def accepted(envelope: Envelope, ack: Ack, *, duplicate: bool) -> bytes:
    """The 202 body encoded straight away: the bytes ``AcceptedResponse.model_dump_json`` writes (the route's
    documented model; tests/unit/test_fast_path.py holds the two together)."""
    tx = envelope.transaction
    return orjson.dumps({"status": "duplicate" if duplicate else "accepted", "duplicate": duplicate,
                         "event_hash": envelope.event_hash, "store_id": tx.store_id,
                         "transaction_id": tx.transaction_id, "partition": ack.partition, "offset": ack.offset})


@dataclass
class Ingest:
    """The ingest stage of one API process: its settings, Kafka publisher and recent-hash memory."""

    settings: Settings
    publisher: Publisher
    recent: RecentHashes
    source: Source = "api"

    def read(self, body: bytes) -> Transaction:
        """The body's transaction as the door admits it (contract, spellings, plausible ts), else ApiError 422."""
        try:
            tx = parse_transaction(body)
        except ApiError:
            count("single", "rejected", "validation_error")
            raise
        if (wrong := implausible(tx, self.settings, datetime.now(UTC))) is not None:
            count("single", "rejected", wrong.code)
            raise wrong
        return tx

    async def one(self, principal: Principal, tx: Transaction) -> Reply:
        """One read transaction: 202 after Kafka's ack (or for a recently acknowledged hash), else ApiError."""
        refused = authorize(principal, tx)
        if refused is not None:
            count("single", "rejected", refused.code)
            raise refused
        envelope = Envelope.wrap(tx, source=self.source)
        known = self.recent.get(envelope.event_hash)
        if known is not None:
            count("single", "duplicate")
            return Reply(202, accepted(envelope, known, duplicate=True))
        try:
            ack = await self.publisher.publish(envelope)
        except PublishUnavailable as exc:
            count("single", "unavailable", "kafka_unavailable")
            raise unavailable(str(exc), self.settings.retry_after_s) from None
        self.recent.remember(envelope.event_hash, ack)
        count("single", "accepted")
        return Reply(202, accepted(envelope, ack, duplicate=False))
