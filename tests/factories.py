"""Small builders of valid transactions and envelopes for tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from scout.contract import Envelope, Transaction
from streams.bronze.decode import BronzeRow, Position, decode


def tx_dict(n: int = 1, *, store: str = "STORE-001", total: str | None = None, qty: int = 2,
            price: str = "25.00", **extra: Any) -> dict[str, Any]:
    line = Decimal(price) * qty
    body: dict[str, Any] = {
        "transaction_id": f"TXN-{n:06d}", "store_id": store, "ts": "2026-01-05T10:00:00Z",
        "total_amount": total if total is not None else str(line),
        "items": [{"product_id": f"SKU-{n % 7}", "product_name": f"Product {n % 7}", "qty": qty,
                   "unit_price": price, "line_amount": str(line)}],
    }
    body.update(extra)
    return body


def envelope(body: dict[str, Any], *, source: str = "api") -> Envelope:
    return Envelope.wrap(Transaction.model_validate(body), source=source,  # type: ignore[arg-type]
                         received_at=datetime.now(UTC))


def bronze_row(body: dict[str, Any], offset: int = 0, *, topic: str = "t") -> BronzeRow:
    result = decode(envelope(body).to_bytes(), key=b"k", position=Position(topic, 0, offset))
    assert isinstance(result, BronzeRow), result
    return result
