"""The set path writes exactly what the row-by-row path writes: the same bronze rows drained both ways give the
same silver (transactions, lines and their links, quarantine reasons and details, warnings, products)."""

from __future__ import annotations

import asyncio
import hashlib
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest

from quality.rules import Thresholds
from scout.settings import Settings
from streams.bronze.decode import BronzeRow
from streams.bronze.sink import land
from streams.silver.step import StepResult, drain_once
from tests.factories import bronze_row, tx_dict
from tests.integration.quality_support import ALL_WARNINGS, samples
from tests.services import Postgres

PRIMERS = [tx_dict(100 + k) for k in range(7)]  # SKU-0 … SKU-6 become products


def _plain() -> list[dict[str, Any]]:
    """Canonical payloads whose SKUs silver knows: the set path takes them."""
    full = tx_dict(1, currency="PHP", device_id="POS-1", customer_segment="family", payment_method="cash")
    lines = tx_dict(2, total="7.30")
    lines["items"] = [{"product_id": "SKU-1", "qty": 3, "unit_price": "1.10"},  # amount computed: 3.30
                      {"product_id": "ALIAS-3", "product_name": "Product three", "brand": "B", "category": "C",
                       "qty": 1, "unit_price": "4.00", "line_amount": "4.00"}]
    return [full, lines, tx_dict(3, ts="2026-01-05T10:00:00.123456Z"), tx_dict(4, qty=1, price="0.00")]


def _row_by_row() -> list[dict[str, Any]]:
    """Canonical payloads the set path leaves to Python: a later conflicting version, a name-only line, a new SKU."""
    by_name = tx_dict(5)
    by_name["items"][0] = {"product_name": "product 2", "qty": 2, "unit_price": "25.00"}
    return [tx_dict(1, qty=3, total="75.00"), by_name, tx_dict(6, items=[
        {"product_id": "NEW-1", "product_name": "New thing", "qty": 2, "unit_price": "25.00"}])]


RAW: list[Any] = [  # payloads as a foreign producer could land them: not canonical, some not valid
    {"transaction_id": "RAW-1", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": 50,
     "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": 25}]},
    {"transaction_id": "RAW-2", "store_id": "STORE-001", "ts": "2026-01-05T12:00:00+02:00", "total_amount": "50.00",
     "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": "25.00"}], "currency": None},
    {"transaction_id": "RAW-3", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": "50.00",
     "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": "25.00"}], "extra": 1},
    {"transaction_id": "RAW-4", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": "50.00",
     "items": [{"product_id": "SKU-1", "qty": 2.0, "unit_price": "25.00"}]},
    {"transaction_id": "RAW-5", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": "50.00",
     "items": []},
    {"transaction_id": "RAW-6", "store_id": "STORE-001", "ts": "2026-02-30T10:00:00Z", "total_amount": "50.00",
     "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": "25.00"}]},
    {"transaction_id": "RAW-7", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": "50.00",
     "items": [{"product_id": "SKU-1", "qty": "2", "unit_price": "25.00"}]},
    {"transaction_id": "RAW-8", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": "50.00",
     "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": "25.000"}]},
    {"transaction_id": "RAW-9", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": "50.00",
     "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": "25.00", "line_amount": None}]},
    {"transaction_id": "RAW-10", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z", "total_amount": "50.00",
     "items": "none"},
    ["not", "an", "object"],
]
_EDGES: list[tuple[str, Any]] = [  # one field each, either side of a limit of the contract
    ("total_amount", "12345678901.00"), ("total_amount", "1234567890.00"), ("ts", "2026-01-05T10:00:00.1234567Z"),
    ("ts", "2026-01-05T10:00:00.5Z"), ("ts", "2026-01-05T24:00:00Z"), ("store_id", "S" * 65),
    ("store_id", "S" * 64), ("device_id", "POS\u0001"), ("currency", "php"), ("payment_method", ""),
]
RAW += [{"transaction_id": f"RAW-{11 + n}", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z",
         "total_amount": "50.00", "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": "25.00"}], field: value}
        for n, (field, value) in enumerate(_EDGES)]
RAW += [{"transaction_id": f"RAW-{21 + n}", "store_id": "STORE-001", "ts": "2026-01-05T10:00:00Z",
         "total_amount": "50.00", "items": [{"product_id": "SKU-1", "qty": 2, "unit_price": "25.00", field: value}]}
        for n, (field, value) in enumerate([("qty", 1000001), ("qty", 1000000), ("product_id", "P" * 65),
                                            ("unit_price", "-0.01"), ("brand", "")])]


async def _land(dsn: str, rows: list[BronzeRow]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await land(conn, rows, [])


def _land_raw(dsn: str, payloads: list[Any], offset: int) -> None:
    with psycopg.connect(dsn) as conn:
        for i, payload in enumerate(payloads):
            text = orjson.dumps(payload).decode()
            conn.execute(
                "INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at,"
                " kafka_topic, kafka_partition, kafka_offset) VALUES (%s, 'api', 'STORE-001', %s, %s::jsonb,"
                " '2026-01-05T10:00:05Z', 't', 0, %s)",
                [hashlib.sha256(text.encode()).hexdigest(),
                 payload.get("transaction_id") if isinstance(payload, dict) else "RAW-X", text, offset + i])


async def _drain(dsn: str, limit: int, limits: Thresholds) -> StepResult:
    total = StepResult(0, 0, 0, 0, 0)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        while (r := await drain_once(conn, limit=limit, limits=limits)).claimed:
            total = total + r
    return total


def _fill(dsn: str, rows: list[BronzeRow], limit: int, limits: Thresholds) -> StepResult:
    """The same bronze rows in the same order; drained ``limit`` at a time (1: row by row only)."""
    asyncio.run(_land(dsn, rows[:len(PRIMERS)]))
    asyncio.run(_drain(dsn, limit, limits))
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO silver.product_aliases (sku, product_key, name, method, confidence) "
                     "SELECT 'ALIAS-3', product_key, 'Product three', 'fuzzy', 0.910 FROM silver.products "
                     "WHERE sku = 'SKU-3'")
    asyncio.run(_land(dsn, rows[len(PRIMERS):]))
    _land_raw(dsn, RAW, 1000)
    return asyncio.run(_drain(dsn, limit, limits))


SNAPSHOT = {
    "transactions": "SELECT store_id, transaction_id, ts, total_amount, currency, device_id, customer_segment, "
                    "payment_method, item_count, source, event_hash, bronze_id, received_at FROM silver.transactions",
    "lines": "SELECT t.transaction_id, l.line_no, p.sku, l.product_id, l.product_name, l.qty, l.unit_price, "
             "l.line_amount, l.link_method, l.link_confidence FROM silver.line_items l JOIN silver.transactions t "
             "USING (txn_id) LEFT JOIN silver.products p ON p.product_key = l.product_key",
    "quarantine": "SELECT bronze_id, event_hash, store_id, transaction_id, reasons, details::text "
                  "FROM silver.quarantine",
    "warnings": "SELECT t.transaction_id, w.rule, w.detail FROM silver.transaction_warnings w "
                "JOIN silver.transactions t USING (txn_id)",
    "products": "SELECT sku, name, name_norm, brand, category FROM silver.products",
    "stores": "SELECT store_id FROM silver.stores",
}


def _snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {name: sorted(conn.execute(query).fetchall(), key=repr) for name, query in SNAPSHOT.items()}


@pytest.mark.parametrize("severities", [{}, ALL_WARNINGS], ids=["critical", "all-warnings"])
def test_set_path_writes_what_the_row_by_row_path_writes(postgres: Postgres, severities: dict[str, str]) -> None:
    limits = Thresholds.from_settings(Settings(quality_severities=severities))  # type: ignore[arg-type]
    by_row, by_set = postgres.fresh_database(), postgres.fresh_database()
    bodies = PRIMERS + _plain() + samples(start=200) + _row_by_row()
    rows = [bronze_row(b, offset=i) for i, b in enumerate(bodies)]  # one receipt time each, for both databases
    row_result = _fill(by_row, rows, 1, limits)
    set_result = _fill(by_set, rows, 50, limits)

    expected = _snapshot(by_row)
    assert _snapshot(by_set) == expected
    assert row_result.set_path == 0
    # the plain ones, the samples that break no rule, RAW-14 (".5Z") and RAW-17 (a 64-character store id);
    # rule breakers went back to the row-by-row path
    assert set_result.set_path == len(_plain()) + 5 + 2
    assert (set_result.inserted, set_result.quarantined, set_result.line_items) == (
        row_result.inserted, row_result.quarantined, row_result.line_items)
    assert set_result.link_methods == row_result.link_methods
    assert set_result.warnings == row_result.warnings
    reasons = {t: r for _, _, _, t, r, _ in expected["quarantine"]}
    assert reasons["TXN-000001"] == ["conflicting_duplicate"]
    invalid = {t for t, r in reasons.items() if r == ["invalid_payload"]}
    assert invalid == {"RAW-3", "RAW-4", "RAW-5", "RAW-6", "RAW-7", "RAW-10", "RAW-X", "RAW-11", "RAW-15",
                       "RAW-16", "RAW-18", "RAW-19", "RAW-20", "RAW-21", "RAW-23", "RAW-25"}
    landed = {row[1] for row in expected["transactions"]}
    # numbers, an offset, nulls, "25.000", seven decimals of a second: valid, not canonical, so row by row;
    # a name-only line; a new SKU
    assert {"RAW-1", "RAW-2", "RAW-8", "RAW-9", "RAW-13", "TXN-000005", "TXN-000006"} <= landed


def test_an_event_lands_once_by_its_key_and_uat_finds_it_without_a_silver_event_hash_index(
        postgres: Postgres) -> None:
    """silver.transactions indexes only what its readers use (migration 0026 dropped the event-hash key, implied
    by the (store_id, transaction_id) key; 0029 the line items' product key): the same events drained again are
    found already present, and `scout uat` still finds each event hash's silver row (through bronze)."""
    from cli.uat import find

    dsn = postgres.fresh_database()
    limits = Thresholds.from_settings(Settings())
    rows = [bronze_row(b, offset=i) for i, b in enumerate(PRIMERS + _plain())]
    asyncio.run(_land(dsn, rows))
    first = asyncio.run(_drain(dsn, 50, limits))
    assert (first.inserted, first.quarantined) == (len(rows), 0)
    with psycopg.connect(dsn) as conn:
        indexes = {r[0]: r[1] for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'silver' AND tablename = 'transactions'")}
        line_indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'silver' AND tablename = 'line_items'")}
        conn.execute("INSERT INTO bronze.pending (bronze_id, received_at)"  # a replay
                     " SELECT id, received_at FROM bronze.transactions")
    assert "transactions_store_txn_key" in indexes
    assert not [name for name, definition in indexes.items() if "event_hash" in definition]
    assert line_indexes == {"line_items_pkey"}  # nothing reads line items by product (migration 0029)
    again = asyncio.run(_drain(dsn, 50, limits))
    assert (again.claimed, again.inserted, again.already_present, again.quarantined) == (len(rows), 0, len(rows), 0)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM silver.transactions").fetchone() == (len(rows),)
    found = find(dsn, [r.event_hash for r in rows], [(r.store_id, r.transaction_id) for r in rows])
    assert set(found.silver) == {r.event_hash for r in rows} and not found.quarantine and not found.duplicate_keys


def _name_only(n: int, name: str) -> dict[str, Any]:
    body = tx_dict(n)
    body["items"][0] = {"product_name": name, "qty": 2, "unit_price": "25.00"}
    return body


def test_a_printed_name_is_linked_by_python_once_then_in_sql_until_a_catalogue_change_could_alter_it(
        postgres: Postgres) -> None:
    from jobs.products import ProductRow, import_products

    dsn = postgres.fresh_database()
    limits = Thresholds.from_settings(Settings())
    links = "SELECT name, name_norm, product_key, method, confidence FROM silver.name_links"
    line = ("SELECT l.product_key, l.product_id, l.product_name, l.qty, l.unit_price, l.line_amount, l.link_method, "
            "l.link_confidence FROM silver.line_items l JOIN silver.transactions t USING (txn_id) "
            "WHERE t.transaction_id = %s")
    asyncio.run(_land(dsn, [bronze_row(b, offset=i) for i, b in enumerate(PRIMERS)]))
    asyncio.run(_drain(dsn, 50, limits))

    asyncio.run(_land(dsn, [bronze_row(_name_only(501, "PRODUCT 2!"), offset=100)]))
    first = asyncio.run(_drain(dsn, 50, limits))  # never seen: linked in Python, remembered
    asyncio.run(_land(dsn, [bronze_row(_name_only(502, "PRODUCT 2!"), offset=101)]))
    again = asyncio.run(_drain(dsn, 50, limits))  # seen: linked by the claim statement itself
    with psycopg.connect(dsn) as conn:
        key = conn.execute("SELECT product_key FROM silver.products WHERE sku = 'SKU-2'").fetchone()
        assert conn.execute(links).fetchall() == [("PRODUCT 2!", "product 2", key[0], "name", Decimal("0.990"))]
        by_python, by_sql = (conn.execute(line, [t]).fetchall() for t in ("TXN-000501", "TXN-000502"))
    assert (first.inserted, first.set_path, dict(first.link_methods)) == (1, 0, {"name": 1})
    assert (again.inserted, again.set_path, dict(again.link_methods)) == (1, 1, {"name": 1})
    assert by_sql == by_python == [(key[0], None, "PRODUCT 2!", 2, Decimal("25.00"), Decimal("50.00"), "name",
                                    Decimal("0.990"))]

    with psycopg.connect(dsn) as conn:  # the product is renamed: the exact link it made no longer holds
        import_products(conn, [ProductRow("SKU-2", "Other thing", None, None)])
        assert conn.execute(links).fetchall() == []
    asyncio.run(_land(dsn, [bronze_row(_name_only(503, "PRODUCT 2!"), offset=102)]))
    after = asyncio.run(_drain(dsn, 50, limits))
    assert (after.inserted, after.set_path, dict(after.link_methods)) == (1, 0, {"unlinked": 1})
    with psycopg.connect(dsn) as conn:
        assert conn.execute(links).fetchall() == []  # an unlinked name is not remembered: Python tries it again
