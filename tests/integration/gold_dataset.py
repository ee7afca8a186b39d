"""A small retail dataset seeded through the real bronze -> silver code, with its figures worked out by hand.

Catalogue (sku, category, unit price): COLA beverages 25.00, CHIPS snacks 30.00, BREAD bakery 45.00,
SOAP household 20.00. Every timestamp is UTC.

    txn  store  ts                 lines                        total   units
    T01  S1     2025-03-03 09:00   COLA x2, CHIPS x1             80.00   3
    T02  S1     2025-03-10 09:00   COLA x2, CHIPS x2            110.00   4
    T03  S1     2025-03-17 09:00   COLA x4, CHIPS x1, BREAD x1  175.00   6
    T04  S1     2025-03-27 09:00   COLA x2, BREAD x1             95.00   3
    T05  S2     2025-03-06 14:00   BREAD x1, SOAP x2             85.00   3
    T06  S2     2025-03-16 14:00   COLA x1, CHIPS x1             55.00   2
    T07  S2     2025-03-26 14:00   SOAP x1                       20.00   1
    T08  S3     2025-03-10 18:00   CHIPS x2, COLA x5            185.00   7
    T09  S3     2025-03-10 19:00   SOAP x1                       20.00   1
    T10  S4     2025-03-01 12:00   SOAP x1                       20.00   1

Totals: 10 orders, 845.00 revenue, average order value 84.50. The latest transaction (T04) makes the
as-of day 2025-03-27.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.test_silver_step import _drain_all, _seed

CATALOGUE: dict[str, tuple[str, str, str]] = {
    "COLA": ("Cola 350ml", "beverages", "25.00"),
    "CHIPS": ("Chips 60g", "snacks", "30.00"),
    "BREAD": ("Bread loaf", "bakery", "45.00"),
    "SOAP": ("Soap bar", "household", "20.00"),
}

# (transaction id, store, UTC timestamp, [(sku, qty)], total)
ROWS: list[tuple[str, str, str, list[tuple[str, int]], str]] = [
    ("T01", "S1", "2025-03-03T09:00:00Z", [("COLA", 2), ("CHIPS", 1)], "80.00"),
    ("T02", "S1", "2025-03-10T09:00:00Z", [("COLA", 2), ("CHIPS", 2)], "110.00"),
    ("T03", "S1", "2025-03-17T09:00:00Z", [("COLA", 4), ("CHIPS", 1), ("BREAD", 1)], "175.00"),
    ("T04", "S1", "2025-03-27T09:00:00Z", [("COLA", 2), ("BREAD", 1)], "95.00"),
    ("T05", "S2", "2025-03-06T14:00:00Z", [("BREAD", 1), ("SOAP", 2)], "85.00"),
    ("T06", "S2", "2025-03-16T14:00:00Z", [("COLA", 1), ("CHIPS", 1)], "55.00"),
    ("T07", "S2", "2025-03-26T14:00:00Z", [("SOAP", 1)], "20.00"),
    ("T08", "S3", "2025-03-10T18:00:00Z", [("CHIPS", 2), ("COLA", 5)], "185.00"),
    ("T09", "S3", "2025-03-10T19:00:00Z", [("SOAP", 1)], "20.00"),
    ("T10", "S4", "2025-03-01T12:00:00Z", [("SOAP", 1)], "20.00"),
]


def body(txn: str, store: str, ts: str, lines: list[tuple[str, int]], total: str) -> dict[str, Any]:
    items = []
    for sku, qty in lines:
        name, category, price = CATALOGUE[sku]
        items.append({"product_id": sku, "product_name": name, "category": category, "qty": qty,
                      "unit_price": price})
    return {"transaction_id": txn, "store_id": store, "ts": ts, "total_amount": total, "items": items}


def seed(dsn: str, rows: list[tuple[str, str, str, list[tuple[str, int]], str]] = ROWS) -> None:
    """Land the rows in bronze and drain them into silver with the production code."""
    asyncio.run(_seed(dsn, [body(*row) for row in rows]))
    asyncio.run(_drain_all(dsn, 100))
