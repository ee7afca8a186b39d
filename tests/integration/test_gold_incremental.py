"""Gold views kept from incremental state (migration 0028) equal their full scans of silver: after appended
orders, after late, displaced and moved transactions, after relinked lines, and after a store queued again for
orders it already counted; a refresh reads only the stores a batch touched."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from jobs.gold import refresh_gold
from sql import parse_queries
from tests.integration import gold_dataset

FULL_SCANS = parse_queries((Path(__file__).parent / "gold_full_scans.sql").read_text(encoding="utf-8"))
# view -> (its full scan in gold_full_scans.sql, the columns that order both)
VIEWS = {
    "gold.next_order_predictions": ("full_scan_next_order_predictions", "1"),
    "gold.product_associations": ("full_scan_product_associations", "1, 4"),
    "gold.sales_by_hour": ("full_scan_sales_by_hour", "1, 2"),
    "gold.dashboard_summary": ("full_scan_dashboard_summary", "1"),
}


def _compare(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Assert every view equals its full scan; return the views' rows."""
    seen: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(dsn) as conn:
        for view, (query, order) in VIEWS.items():
            kept = conn.execute(f"SELECT * FROM {view} ORDER BY {order}").fetchall()
            scanned = conn.execute(f"SELECT * FROM ({FULL_SCANS[query]}) f ORDER BY {order}").fetchall()
            assert kept == scanned, view
            seen[view] = kept
    return seen


def _order(conn: psycopg.Connection[Any], txn: str, store: str, ts: str, lines: list[tuple[str, int]],
           total: str) -> None:
    row = conn.execute(
        "INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, item_count, source, event_hash,"
        " bronze_id, received_at) VALUES (%s, %s, %s, %s, %s, 'api', lpad(md5(%s), 64, '0'), 0, now())"
        " RETURNING txn_id", [store, txn, ts, total, len(lines), txn]).fetchone()
    assert row is not None
    for line_no, (sku, qty) in enumerate(lines, start=1):
        conn.execute(
            "INSERT INTO silver.line_items (txn_id, line_no, product_key, product_id, product_name, qty, unit_price,"
            " line_amount, link_method, link_confidence) SELECT %s, %s, product_key, sku, name, %s, 10.00, %s,"
            " 'sku', 1 FROM silver.products WHERE sku = %s", [row[0], line_no, qty, 10 * qty, sku])


def _moved(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE ops.watermarks SET version = version + 1 WHERE name = 'silver'")


def test_incremental_views_equal_their_full_scans_through_late_and_displaced_data(database: str) -> None:
    gold_dataset.seed(database)
    with ConnectionPool(database, min_size=1, max_size=2, open=True) as pool:
        refresh_gold(pool)
        first = _compare(database)
        assert {r[0] for r in first["gold.next_order_predictions"]} == {"S1", "S2", "S3"}
        assert len(first["gold.product_associations"]) == 4

        # Appended orders, a corrected total among S2's last five, a relinked line.
        with psycopg.connect(database, autocommit=True) as conn, conn.transaction():
            _order(conn, "A1", "S1", "2025-04-03T09:00:00Z", [("COLA", 3), ("CHIPS", 1)], "40.00")
            _order(conn, "A2", "S4", "2025-04-01T12:00:00Z", [("SOAP", 2), ("BREAD", 1)], "30.00")
            conn.execute("UPDATE silver.transactions SET total_amount = 60.00 WHERE transaction_id = 'T06'")
            conn.execute("UPDATE silver.line_items l SET product_key = p.product_key FROM silver.products p"
                         " WHERE p.sku = 'COLA' AND l.txn_id = (SELECT txn_id FROM silver.transactions"
                         " WHERE transaction_id = 'T07')")
            _moved(conn)
        assert {r.status for r in refresh_gold(pool)} == {"refreshed"}
        appended = _compare(database)
        assert {r[0] for r in appended["gold.next_order_predictions"]} == {"S1", "S2", "S3", "S4"}

        # A late order in the middle of S1's history, a displaced one (S3 keeps a single order), an order
        # moved in time and one moved to another store.
        with psycopg.connect(database, autocommit=True) as conn, conn.transaction():
            _order(conn, "L1", "S1", "2025-03-05T09:00:00Z", [("COLA", 1), ("CHIPS", 1)], "20.00")
            conn.execute("DELETE FROM silver.transactions WHERE transaction_id = 'T09'")
            conn.execute("UPDATE silver.transactions SET ts = '2025-03-20T10:00:00Z' WHERE transaction_id = 'T05'")
            conn.execute("UPDATE silver.transactions SET store_id = 'S4' WHERE transaction_id = 'T06'")
            _moved(conn)
        refresh_gold(pool)
        late = _compare(database)
        assert {r[0] for r in late["gold.next_order_predictions"]} == {"S1", "S2", "S4"}
        s1 = next(r for r in late["gold.next_order_predictions"] if r[0] == "S1")
        assert (s1[2], s1[3]) == (6, 5)  # T01, L1, T02, T03, T04, A1: orders, intervals

        # A store queued again for an order it already counted (a commit the refresh saw before its marker):
        # counted once; then one new order at S2 reads S2 alone.
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("INSERT INTO agg.dirty_stores (store_id, rebuild, ts, txn_id) SELECT store_id, false, ts,"
                         " txn_id FROM silver.transactions WHERE transaction_id = 'L1'")
            with conn.transaction():
                _moved(conn)
        refresh_gold(pool)
        assert _compare(database) == late
        with psycopg.connect(database, autocommit=True) as conn:
            with conn.transaction():
                _order(conn, "A3", "S2", "2025-04-05T14:00:00Z", [("SOAP", 1)], "10.00")
            read = conn.execute("SELECT ops.refresh_gold_aggregate('store_orders')").fetchone()
            queued = conn.execute("SELECT count(*) FROM agg.dirty_stores").fetchone()
            with conn.transaction():
                _moved(conn)
        assert (read, queued) == ((1,), (0,))
        refresh_gold(pool)
        incremental = _compare(database)
        refresh_gold(pool, rebuild=True)
        assert _compare(database) == incremental


def test_a_backfill_of_many_days_keeps_pairs_and_totals_equal_to_the_full_scans(database: str) -> None:
    gold_dataset.seed(database)
    with ConnectionPool(database, min_size=1, max_size=2, open=True) as pool:
        refresh_gold(pool)
        with psycopg.connect(database, autocommit=True) as conn, conn.transaction():
            for day in range(1, 41):  # 40 days: more than the per-day path takes, one pass over silver
                _order(conn, f"B{day}", "S2", f"{date(2024, 1, 1) + timedelta(days=day)}T{day % 24:02d}:00:00Z",
                       [("BREAD", 1), ("SOAP", 1)], "20.00")
            _moved(conn)
        refresh_gold(pool)
        backfilled = _compare(database)
    pairs = {(r[1], r[4]): r[6] for r in backfilled["gold.product_associations"]}
    assert pairs[("BREAD", "SOAP")] == 41  # T05 and the 40 backfilled orders
