"""Builders of valid pos.transactions.v1 payloads for unit tests; override any field by keyword."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "transaction_id": "TXN-1",
    "store_id": "STORE-001",
    "ts": "2025-01-24T18:30:00Z",
    "total_amount": "50.00",
    "currency": "PHP",
    "items": [
        {"product_id": "SKU-1", "product_name": "Cola 350ml", "qty": 2, "unit_price": "25.00",
         "line_amount": "50.00"},
    ],
}


def payload(**overrides: Any) -> dict[str, Any]:
    """A fresh valid transaction dict with ``overrides`` applied at the top level."""
    result = copy.deepcopy(BASE)
    result.update(copy.deepcopy(overrides))
    return result


def item(**overrides: Any) -> dict[str, Any]:
    """A fresh valid line item (2 x 25.00 = 50.00) with ``overrides`` applied."""
    result = copy.deepcopy(BASE["items"][0])
    result.update(overrides)
    return {k: v for k, v in result.items() if v is not None}
