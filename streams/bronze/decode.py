"""Turn raw topic messages into bronze rows or dead letters (never an exception).

Example::

    row_or_dead = decode(raw_bytes, key=b"STORE-1", topic="pos.transactions.v1", partition=0, offset=7)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import ValidationError

from scout.contract import Envelope

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class BronzeRow:
    event_hash: str
    source: str
    store_id: str
    transaction_id: str
    payload_json: str
    received_at: datetime
    position: Position


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    raw: bytes
    reason: str
    position: Position


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"]) or "(message)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"schema: {loc}: {first['msg']}{more}"[:MAX_REASON]


def decode(raw: bytes | None, *, key: bytes | None, position: Position) -> BronzeRow | DeadLetter:
    if raw is None:
        return DeadLetter(key, b"", "empty message (tombstone)", position)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return DeadLetter(key, raw, f"not JSON: {exc}"[:MAX_REASON], position)
    if not isinstance(document, dict):
        return DeadLetter(key, raw, "not a JSON object", position)
    version = document.get("version")
    if document.get("schema") != "pos.transactions.v1" or type(version) is not int or version != 1:
        found = f"{document.get('schema')!r} v{document.get('version')!r}"
        return DeadLetter(key, raw, f"unsupported schema {found}"[:MAX_REASON], position)
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        return DeadLetter(key, raw, _reason(exc), position)
    if not envelope.hash_matches():
        return DeadLetter(key, raw, f"event_hash mismatch for {envelope.event_hash}", position)
    tx = envelope.transaction
    return BronzeRow(
        event_hash=envelope.event_hash,
        source=envelope.source,
        store_id=tx.store_id,
        transaction_id=tx.transaction_id,
        payload_json=orjson.dumps(tx.canonical()).decode(),
        received_at=envelope.received_at,
        position=position,
    )
