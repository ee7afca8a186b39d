"""The event contract of ``pos.transactions.v1``: validation, canonical form and event hash.

Example::

    tx = Transaction.model_validate_json(body)
    event = Envelope.wrap(tx, source="api")
    event.event_hash      # sha256 over the canonical JSON: same for any key order or "1.5" vs "1.50"
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

SCHEMA: Final = "pos.transactions.v1"
SCHEMA_VERSION: Final = 1
CENT = Decimal("0.01")
MAX_ITEMS = 500

Source = Literal["api", "bulk", "simulator"]


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT) + 0  # "1.5" -> 1.50; -0.00 -> 0.00: one value, one hash


MONEY_PATTERN: Final = r"^\s*[+-]?(\d{1,10}(\.\d{0,2}0*)?|\.\d{1,2}0*)\s*$"
MONEY_SCHEMA: Final = {
    "description": "Decimal money, at most 2 decimal places, less than 10,000,000,000 in absolute value: "
                   "a JSON string (\"25.00\") or number (25).",
    "anyOf": [
        {"type": "string", "pattern": MONEY_PATTERN},
        {"type": "number", "multipleOf": 0.01, "exclusiveMinimum": -1e10, "exclusiveMaximum": 1e10},
    ],
}

# pydantic-core parses JSON numbers for Decimal exactly and counts places after normalising ("1.290" is fine)
Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2, allow_inf_nan=False), AfterValidator(_cents),
                  WithJsonSchema(MONEY_SCHEMA)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
TEXT_MAX: Final = 200
IDENT_MAX: Final = 64
Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX, pattern=r"^[^\x00]+$")]
Ident = Annotated[str, Field(min_length=1, max_length=IDENT_MAX, pattern=r"^[^\x00-\x1f]+$")]


class LineItem(BaseModel):
    """One line of a basket: qty x unit_price of a product named by id or by name."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"anyOf": [
            {"required": ["product_id"], "properties": {"product_id": {"type": "string"}}},
            {"required": ["product_name"], "properties": {"product_name": {"type": "string"}}},
        ]},
    )

    product_id: Ident | None = None
    product_name: Text | None = None
    brand: Text | None = None
    category: Text | None = None
    qty: int = Field(ge=-1_000_000, le=1_000_000, strict=True)
    unit_price: Money
    line_amount: Money | None = None

    @model_validator(mode="after")
    def _named(self) -> LineItem:
        if self.product_id is None and self.product_name is None:
            raise ValueError("either product_id or product_name is required")
        return self


class Transaction(BaseModel):
    """A point-of-sale transaction as devices post it (see SPEC.md, the contract)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "transaction_id": "TXN-20250824-001",
                    "store_id": "STORE-001",
                    "ts": "2025-01-24T18:30:00Z",
                    "total_amount": "50.00",
                    "currency": "PHP",
                    "device_id": "POS-17",
                    "customer_segment": "family",
                    "payment_method": "cash",
                    "items": [
                        {
                            "product_id": "PROD-001",
                            "product_name": "Coca-Cola 350ml",
                            "brand": "Coca-Cola",
                            "category": "beverages",
                            "qty": 2,
                            "unit_price": "25.00",
                            "line_amount": "50.00",
                        }
                    ],
                }
            ]
        },
    )

    transaction_id: Ident
    store_id: Ident
    ts: UtcDatetime
    total_amount: Money
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    device_id: Ident | None = None
    customer_segment: Text | None = None
    payment_method: Text | None = None
    items: list[LineItem] = Field(min_length=1, max_length=MAX_ITEMS)

    def canonical(self) -> dict[str, Any]:
        """JSON-ready canonical form: decimals to cents, UTC timestamps, no nulls."""
        return self.model_dump(mode="json", exclude_none=True)

    def canonical_json(self) -> bytes:
        return self.canonical_bytes

    @cached_property
    def canonical_bytes(self) -> bytes:
        """The canonical JSON, once per (immutable) transaction: the event hash and the envelope share it."""
        return orjson.dumps(self.canonical(), option=orjson.OPT_SORT_KEYS)

    def event_hash(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()


class Envelope(BaseModel):
    """What travels on the topic: the canonical transaction plus where and when it was received."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["pos.transactions.v1"] = Field(default=SCHEMA, alias="schema")
    version: Literal[1] = SCHEMA_VERSION
    event_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    source: Source
    received_at: UtcDatetime
    transaction: Transaction

    @classmethod
    def wrap(cls, tx: Transaction, *, source: Source, received_at: datetime | None = None) -> Envelope:
        return cls(
            schema=SCHEMA,
            event_hash=tx.event_hash(),
            source=source,
            received_at=received_at or datetime.now(UTC),
            transaction=tx,
        )

    def to_bytes(self) -> bytes:
        body = {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "event_hash": self.event_hash,
            "source": self.source,
            "received_at": self.received_at.isoformat().replace("+00:00", "Z"),
            "transaction": orjson.Fragment(self.transaction.canonical_json()),  # already sorted and compact
        }
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Decode a topic message; raises ``ValueError`` (JSON) or ``ValidationError``."""
        return cls.model_validate_json(raw)

    def hash_matches(self) -> bool:
        return self.transaction.event_hash() == self.event_hash


# --- JSON spellings the model alone would accept, refused where bodies are read (the API) -------------------
# The model reads a money string with Decimal(), which also takes "1e1", "1_000" or "NaN", and a ts given
# as epoch seconds (a JSON number or a numeric string) where the contract says an ISO 8601 string. These
# checks hold the JSON a client sends to the documented spellings; they run on the parsed document, once
# per body, so the model (also used to decode the topic, where the canonical form always passes) stays on
# pydantic's fast path.

ISO_DATETIME: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")
TS_SPELLING: Final = ('an ISO 8601 date-time string with an offset, e.g. "2025-01-24T18:30:00Z" (not a number '
                      'of seconds)')
MONEY_FIELDS: Final = ("total_amount",)
ITEM_MONEY_FIELDS: Final = ("unit_price", "line_amount")
_MONEY_TEXT: Final = re.compile(MONEY_PATTERN)
MONEY_SPELLING: Final = ('a decimal string has digits with an optional sign and decimal point, at most 2 decimal '
                         'places and no exponent, e.g. "25.00" (or send a JSON number)')


def _money_spelling(value: Any) -> str | None:
    if isinstance(value, str) and _MONEY_TEXT.match(value) is None:
        return MONEY_SPELLING
    return None


def spelling_errors(document: Any) -> list[dict[str, str]]:
    """Field paths and reasons for spellings outside the documented contract, in a parsed JSON transaction.

    JSON numbers are read exactly in any JSON spelling (``25``, ``25.0``, ``2.5e1``): the contract allows a
    number, and a number has one value. Anything else (not an object, wrong types) is left to the model.
    """
    if not isinstance(document, dict):
        return []
    errors = []
    ts = document.get("ts")
    if ts is not None and not (isinstance(ts, str) and ISO_DATETIME.match(ts)):
        errors.append({"field": "ts", "reason": TS_SPELLING})
    for name in MONEY_FIELDS:
        if (reason := _money_spelling(document.get(name))) is not None:
            errors.append({"field": name, "reason": reason})
    items = document.get("items")
    if isinstance(items, list):
        for index, line in enumerate(items):
            if not isinstance(line, dict):
                continue
            for name in ITEM_MONEY_FIELDS:
                if (reason := _money_spelling(line.get(name))) is not None:
                    errors.append({"field": f"items.{index}.{name}", "reason": reason})
    return errors


def ts_out_of_range(ts: datetime, *, earliest: datetime, latest: datetime) -> str | None:
    """Why ``ts`` is not a plausible time of sale (before ``earliest`` or after ``latest``), or None."""
    if ts < earliest:
        return f"{_iso(ts)} is before {_iso(earliest)}, the earliest accepted"
    if ts > latest:
        return f"{_iso(ts)} is after {_iso(latest)}, the latest accepted (receipt plus the allowed lead)"
    return None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
