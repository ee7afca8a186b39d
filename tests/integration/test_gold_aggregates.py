"""The per-day aggregates under gold (schema agg): every kind of silver change reaches gold through the
queued days alone, and the incremental result equals a full rebuild from silver."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from jobs.gold import GOLD_VIEWS, refresh_gold
from tests.integration import gold_dataset


def _snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {v.name: conn.execute(f"SELECT * FROM {v.name} ORDER BY 1, 2").fetchall() for v in GOLD_VIEWS}


def _change_silver(dsn: str) -> None:
    """A displaced transaction (lines go by cascade), a relinked line, a recategorised product, a late
    transaction on an old day, and a corrected total; the silver watermark moves once."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("DELETE FROM silver.transactions WHERE transaction_id = 'T09'")
        conn.execute("UPDATE silver.line_items l SET product_key = p.product_key FROM silver.products p "
                      "WHERE p.sku = 'COLA' AND l.txn_id = (SELECT txn_id FROM silver.transactions "
                      "WHERE transaction_id = 'T07')")
        conn.execute("UPDATE silver.products SET category = 'cleaning' WHERE sku = 'SOAP'")
        txn = conn.execute(
            "INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, item_count, source,"
            " event_hash, bronze_id, received_at) VALUES ('S4', 'T11', '2025-03-02T08:00:00Z', 50.00, 1, 'api',"
            " repeat('f', 64), 0, now()) RETURNING txn_id").fetchone()
        conn.execute("INSERT INTO silver.line_items (txn_id, line_no, product_key, product_id, product_name, qty,"
                      " unit_price, line_amount, link_method, link_confidence) SELECT %s, 1, product_key, sku, name,"
                      " 2, 25.00, 50.00, 'sku', 1 FROM silver.products WHERE sku = 'COLA'", [txn[0] if txn else None])
        conn.execute("UPDATE silver.transactions SET total_amount = 60.00 WHERE transaction_id = 'T06'")
        conn.execute("UPDATE ops.watermarks SET version = version + 1 WHERE name = 'silver'")


def test_incremental_refresh_equals_a_full_rebuild(database: str) -> None:
    gold_dataset.seed(database)
    with ConnectionPool(database, min_size=1, max_size=2, open=True) as pool:
        refresh_gold(pool)
        _change_silver(database)
        assert {r.status for r in refresh_gold(pool)} == {"refreshed"}
        incremental = _snapshot(database)
        with psycopg.connect(database) as conn:
            queued = conn.execute("SELECT count(*) FROM agg.dirty_days").fetchone()
        refresh_gold(pool, rebuild=True)
        rebuilt = _snapshot(database)
    assert queued == (0,)
    assert incremental == rebuilt
    with psycopg.connect(database) as conn:
        soap = conn.execute("SELECT day, orders, revenue FROM gold.sales_by_category_day "
                            "WHERE category IN ('household', 'cleaning') ORDER BY day").fetchall()
        s4 = conn.execute("SELECT day, orders, revenue FROM gold.sales_by_store_day WHERE store_id = 'S4' "
                          "ORDER BY day").fetchall()
        s3 = conn.execute("SELECT orders, units, revenue FROM gold.basket_metrics WHERE store_id = 'S3'").fetchone()
        cola = conn.execute("SELECT sum(orders), sum(units), sum(revenue) FROM gold.sales_by_product_day "
                            "WHERE sku = 'COLA'").fetchone()
        totals = conn.execute("SELECT (SELECT sum(revenue) FROM gold.sales_by_store_day), "
                              "(SELECT sum(total_amount) FROM silver.transactions)").fetchone()
    # SOAP is now 'cleaning': T10 (03-01) and T05 (03-06) remain; T07 became COLA, T09 was displaced.
    assert soap == [(date(2025, 3, 1), 1, D("20.00")), (date(2025, 3, 6), 1, D("40.00"))]
    assert s4 == [(date(2025, 3, 1), 1, D("20.00")), (date(2025, 3, 2), 1, D("50.00"))]
    assert s3 == (1, 7, D("185.00"))  # T08 only
    # COLA: 6 orders, 16 units, 400.00 before; + T07 (1 unit, 20.00) + T11 (2 units, 50.00)
    assert cola == (8, 19, D("470.00"))
    assert totals is not None and totals[0] == totals[1] == D("880.00")  # 845 - 20 (T09) + 50 (T11) + 5 (T06)


def test_a_backfill_of_many_days_is_recomputed_in_one_pass_with_the_same_result(database: str) -> None:
    gold_dataset.seed(database)
    with ConnectionPool(database, min_size=1, max_size=2, open=True) as pool:
        refresh_gold(pool)
        with psycopg.connect(database, autocommit=True) as conn, conn.transaction():
            conn.execute(  # 40 days of one 10.00 order each, then the line that makes it a basket
                "INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, item_count, source,"
                " event_hash, bronze_id, received_at) SELECT 'S1', 'B' || g, timestamptz '2024-01-01' + g * interval"
                " '1 day', 10.00, 1, 'api', lpad(to_hex(g), 64, 'b'), 0, now() FROM generate_series(1, 40) g")
            conn.execute("INSERT INTO silver.line_items (txn_id, line_no, product_key, qty, unit_price, line_amount,"
                         " link_method, link_confidence) SELECT t.txn_id, 1, p.product_key, 1, 10.00, 10.00, 'sku', 1"
                         " FROM silver.transactions t, silver.products p WHERE t.transaction_id LIKE 'B%' AND"
                         " p.sku = 'SOAP'")
            conn.execute("UPDATE ops.watermarks SET version = version + 1 WHERE name = 'silver'")
        refresh_gold(pool)
        incremental = _snapshot(database)
        refresh_gold(pool, rebuild=True)
        rebuilt = _snapshot(database)
    assert incremental == rebuilt
    with psycopg.connect(database) as conn:
        backfilled = conn.execute("SELECT count(*), sum(orders), sum(revenue) FROM gold.sales_by_category_day "
                                  "WHERE day < '2025-01-01'").fetchone()
    assert backfilled == (40, 40, D("400.00"))
