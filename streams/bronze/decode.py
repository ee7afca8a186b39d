"""Turn raw topic messages into bronze rows or dead letters (never an exception).

Example::

    row_or_dead = decode(raw_bytes, key=b"STORE-1", topic="pos.transactions.v1", partition=0, offset=7)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import orjson
from pydantic import ValidationError

from scout.contract import Envelope, Source

MAX_REASON = 500
SOURCES = frozenset(get_args(Source))
ENVELOPE_KEYS = frozenset({"schema", "version", "event_hash", "source", "received_at", "transaction"})
UNSTORABLE_REASON = "reason not storable (see the raw message)"


def storable(text: str, limit: int = MAX_REASON) -> str:
    """Text PostgreSQL can hold: NUL bytes and lone surrogates written as escapes, at most ``limit`` characters.

    Example::

        storable("schema: a\x00b: extra") == "schema: a\\x00b: extra"
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:limit]


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
    payload: bytes  # the canonical transaction, JSON
    received_at: datetime
    position: Position
    received_text: str  # received_at as the envelope spelt it (ISO 8601), for COPY

    @property
    def payload_json(self) -> str:
        return self.payload.decode()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    raw: bytes
    reason: str
    position: Position

    @property
    def code(self) -> str:
        """The reason as a short code, for metrics (the full reason stays in ops.dead_letters)."""
        for prefix, code in REASON_CODES:
            if self.reason.startswith(prefix):
                return code
        return "other"


# Reason prefixes of the dead letters (decode below, and the sink) and their metric codes.
REASON_CODES: tuple[tuple[str, str], ...] = (
    ("empty message", "empty"),
    ("not JSON", "not_json"),
    ("not a JSON object", "not_object"),
    ("unsupported schema", "unsupported_schema"),
    ("schema:", "invalid_envelope"),
    ("event_hash mismatch", "hash_mismatch"),
    ("refused by database", "refused_by_database"),
    ("not storable", "not_storable"),
)


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"]) or "(message)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return storable(f"schema: {loc}: {first['msg']}{more}")


def _canonical_fast_path(document: dict[str, Any], position: Position) -> BronzeRow | None:
    """Envelopes whose transaction is already canonical (everything the API and uploads produce) hash to
    their event_hash as they are: land them without re-validating. Anything else takes the full path.
    Content that is hashed right but breaks the contract is quarantined by silver (invalid_payload)."""
    tx, event_hash, source = document.get("transaction"), document.get("event_hash"), document.get("source")
    if not (isinstance(tx, dict) and isinstance(event_hash, str) and source in SOURCES):
        return None
    if document.keys() - ENVELOPE_KEYS:  # an unknown key: the full path names it
        return None
    store_id, transaction_id, received = tx.get("store_id"), tx.get("transaction_id"), document.get("received_at")
    if not (isinstance(store_id, str) and isinstance(transaction_id, str) and isinstance(received, str)):
        return None
    canonical = orjson.dumps(tx, option=orjson.OPT_SORT_KEYS)
    if hashlib.sha256(canonical).hexdigest() != event_hash or b"\\u0000" in canonical:
        return None
    try:
        received_at = datetime.fromisoformat(received)
    except ValueError:
        return None
    if received_at.tzinfo is None:
        return None
    return BronzeRow(event_hash, str(source), store_id, transaction_id, canonical, received_at, position, received)


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
    fast = _canonical_fast_path(document, position)
    if fast is not None:
        return fast
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        return DeadLetter(key, raw, _reason(exc), position)
    if not envelope.hash_matches():
        return DeadLetter(key, raw, f"event_hash mismatch for {envelope.event_hash}", position)
    tx = envelope.transaction
    payload = orjson.dumps(tx.canonical())
    if b"\\u0000" in payload:
        return DeadLetter(key, raw, "not storable: the transaction holds a NUL character (\\u0000)", position)
    return BronzeRow(
        event_hash=envelope.event_hash,
        source=envelope.source,
        store_id=tx.store_id,
        transaction_id=tx.transaction_id,
        payload=payload,
        received_at=envelope.received_at,
        position=position,
        received_text=envelope.received_at.isoformat(),
    )
