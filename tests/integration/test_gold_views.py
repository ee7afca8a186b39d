"""Every gold view on the hand-worked dataset of tests/integration/gold_dataset.py: the expected figures
are worked out by hand from the ten transactions there, never by running the views' SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from jobs.gold import GOLD_VIEWS, refresh_gold
from tests.integration import gold_dataset


@pytest.fixture
def gold(database: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    gold_dataset.seed(database)
    with ConnectionPool(database, min_size=1, max_size=2, open=True) as pool:
        results = refresh_gold(pool)
    assert {r.status for r in results} == {"refreshed"}, results
    with psycopg.connect(database, row_factory=dict_row) as conn:
        yield conn


def _rows(conn: psycopg.Connection[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    return conn.execute(query).fetchall()


def test_sales_by_store_day(gold: psycopg.Connection[dict[str, Any]]) -> None:
    rows = _rows(gold, "SELECT store_id, day, orders, line_items, revenue FROM gold.sales_by_store_day "
                       "ORDER BY store_id, day")
    assert [(r["store_id"], r["day"], r["orders"], r["line_items"], r["revenue"]) for r in rows] == [
        ("S1", date(2025, 3, 3), 1, 2, D("80.00")),
        ("S1", date(2025, 3, 10), 1, 2, D("110.00")),
        ("S1", date(2025, 3, 17), 1, 3, D("175.00")),
        ("S1", date(2025, 3, 27), 1, 2, D("95.00")),
        ("S2", date(2025, 3, 6), 1, 2, D("85.00")),
        ("S2", date(2025, 3, 16), 1, 2, D("55.00")),
        ("S2", date(2025, 3, 26), 1, 1, D("20.00")),
        ("S3", date(2025, 3, 10), 2, 3, D("205.00")),  # T08 185.00 + T09 20.00
        ("S4", date(2025, 3, 1), 1, 1, D("20.00")),
    ]


def test_sales_by_hour(gold: psycopg.Connection[dict[str, Any]]) -> None:
    rows = _rows(gold, "SELECT * FROM gold.sales_by_hour ORDER BY store_id, hour_of_day")
    assert [(r["store_id"], r["hour_of_day"], r["orders"], r["units"], r["revenue"], r["active_days"])
            for r in rows] == [
        ("S1", 9, 4, 16, D("460.00"), 4),  # units 3 + 4 + 6 + 3
        ("S2", 14, 3, 6, D("160.00"), 3),
        ("S3", 18, 1, 7, D("185.00"), 1),
        ("S3", 19, 1, 1, D("20.00"), 1),
        ("S4", 12, 1, 1, D("20.00"), 1),
    ]


def test_top_products_from_sales_by_product_day(gold: psycopg.Connection[dict[str, Any]]) -> None:
    rows = _rows(gold, "SELECT sku, sum(orders) AS orders, sum(units) AS units, sum(revenue) AS revenue "
                       "FROM gold.sales_by_product_day GROUP BY sku ORDER BY sum(revenue) DESC")
    # COLA: 50 + 50 + 100 + 50 + 25 + 125; CHIPS: 30 + 60 + 30 + 30 + 60; BREAD 3 x 45; SOAP 40 + 20 + 20 + 20
    assert [(r["sku"], r["orders"], r["units"], r["revenue"]) for r in rows] == [
        ("COLA", 6, 16, D("400.00")),
        ("CHIPS", 5, 7, D("210.00")),
        ("BREAD", 3, 3, D("135.00")),
        ("SOAP", 4, 5, D("100.00")),
    ]
    cola_mar10 = _rows(gold, "SELECT orders, units, revenue, category FROM gold.sales_by_product_day "
                             "WHERE sku = 'COLA' AND day = '2025-03-10'")
    assert cola_mar10 == [{"orders": 2, "units": 7, "revenue": D("175.00"), "category": "beverages"}]  # T02 + T08


def test_sales_by_category_day(gold: psycopg.Connection[dict[str, Any]]) -> None:
    totals = _rows(gold, "SELECT category, sum(revenue) AS revenue, sum(units) AS units "
                         "FROM gold.sales_by_category_day GROUP BY category ORDER BY category")
    assert [(r["category"], r["revenue"], r["units"]) for r in totals] == [
        ("bakery", D("135.00"), 3), ("beverages", D("400.00"), 16), ("household", D("100.00"), 5),
        ("snacks", D("210.00"), 7),
    ]
    snacks = _rows(gold, "SELECT day, orders FROM gold.sales_by_category_day WHERE category = 'snacks' ORDER BY day")
    assert [(r["day"], r["orders"]) for r in snacks] == [
        (date(2025, 3, 3), 1), (date(2025, 3, 10), 2), (date(2025, 3, 16), 1), (date(2025, 3, 17), 1),
    ]


def test_basket_metrics(gold: psycopg.Connection[dict[str, Any]]) -> None:
    (s3,) = _rows(gold, "SELECT * FROM gold.basket_metrics WHERE store_id = 'S3'")
    # T08: 2 lines, 7 units, 185.00; T09: 1 line, 1 unit, 20.00
    assert (s3["orders"], s3["units"], s3["lines"], s3["revenue"]) == (2, 8, 3, D("205.00"))
    assert (s3["avg_units_per_basket"], s3["avg_lines_per_basket"]) == (D("4.00"), D("1.50"))
    assert (s3["average_order_value"], s3["max_order_value"]) == (D("102.50"), D("185.00"))


def test_dashboard_summary(gold: psycopg.Connection[dict[str, Any]]) -> None:
    (row,) = _rows(gold, "SELECT * FROM gold.dashboard_summary")
    assert (row["id"], row["stores"], row["products"], row["orders"]) == (1, 4, 4, 10)
    assert (row["revenue"], row["average_order_value"]) == (D("845.00"), D("84.50"))  # 845.00 / 10
    assert (row["first_day"], row["last_day"]) == (date(2025, 3, 1), date(2025, 3, 27))
    assert [(s["store_id"], s["orders"], D(str(s["revenue"]))) for s in row["top_stores"]] == [
        ("S1", 4, D("460")), ("S3", 2, D("205")), ("S2", 3, D("160")), ("S4", 1, D("20")),
    ]
    assert [(p["sku"], p["units"]) for p in row["top_products"]] == [
        ("COLA", 16), ("CHIPS", 7), ("BREAD", 3), ("SOAP", 5),
    ]


def test_store_segments(gold: psycopg.Connection[dict[str, Any]]) -> None:
    rows = {r["store_id"]: r for r in _rows(gold, "SELECT * FROM gold.store_segments")}
    # As of 2025-03-27 (T04). Revenue ranks (1 = lowest): S4 20, S2 160, S3 205, S1 460.
    # Orders per week = orders x 7 / tenure days: S4 1x7/27 = 0.26, S3 2x7/18 = 0.78, S2 3x7/22 = 0.95,
    # S1 4x7/25 = 1.12. Points (revenue rank + frequency rank) out of 2 x 4 stores:
    # S1 4+4 = 8 -> 1.000 high; S2 2+3 = 5 -> 0.625 medium; S3 3+2 = 5 -> 0.625 medium; S4 1+1 -> 0.250 low.
    assert {s: (r["value_score"], r["value_tier"]) for s, r in rows.items()} == {
        "S1": (D("1.000"), "high"), "S2": (D("0.625"), "medium"), "S3": (D("0.625"), "medium"),
        "S4": (D("0.250"), "low"),
    }
    assert {s: r["orders_per_week"] for s, r in rows.items()} == {
        "S1": D("1.12"), "S2": D("0.95"), "S3": D("0.78"), "S4": D("0.26")}
    # Churn: usual gap = (last - first active day) / (active days - 1), 7 with one active day.
    # S1 gap 24/3 = 8, recency 0 -> low; S2 gap 20/2 = 10, recency 1 -> low;
    # S3 gap 7, recency 17 (> 10.5, <= 21) -> medium; S4 gap 7, recency 26 (> 21) -> high.
    assert {s: (r["recency_days"], r["usual_gap_days"], r["churn_risk"]) for s, r in rows.items()} == {
        "S1": (0, D("8.00"), "low"), "S2": (1, D("10.00"), "low"), "S3": (17, D("7.00"), "medium"),
        "S4": (26, D("7.00"), "high"),
    }
    assert rows["S3"]["recency_ratio"] == D("2.43")  # 17 / 7
    assert all(r["as_of_day"] == date(2025, 3, 27) for r in rows.values())


def test_next_order_predictions(gold: psycopg.Connection[dict[str, Any]]) -> None:
    rows = {r["store_id"]: r for r in _rows(gold, "SELECT * FROM gold.next_order_predictions")}
    assert set(rows) == {"S1", "S2", "S3"}  # S4 has a single order: no interval to learn from
    s1 = rows["S1"]
    # Intervals 7, 7, 10 days -> mean 8; last order 2025-03-27 09:00 -> 2025-04-04 09:00.
    assert s1["expected_next_at"] == datetime(2025, 4, 4, 9, 0, tzinfo=UTC)
    assert (s1["expected_date"], s1["mean_interval_days"], s1["window_days"]) == (
        date(2025, 4, 4), D("8.00"), D("2.00"))  # window max(1, 25% of 8)
    # Backtest: 2nd interval 7 vs prior mean 7 -> hit; 3rd 10 vs prior mean 7 (window 1.75) -> miss.
    assert (s1["backtested_intervals"], s1["backtest_hits"], s1["confidence"]) == (2, 1, D("0.500"))  # 2/4
    # Basket from T01..T04: COLA in 4/4 (2+2+4+2)/4; CHIPS in 3/4 (1+2+1)/3; BREAD in 2/4 (1+1)/2.
    assert s1["expected_basket_value"] == D("115.00")  # (80 + 110 + 175 + 95) / 4
    assert [(i["sku"], D(str(i["expected_qty"])), D(str(i["share"]))) for i in s1["expected_items"]] == [
        ("COLA", D("2.5"), D("1")), ("CHIPS", D("1.33"), D("0.75")), ("BREAD", D("1"), D("0.5")),
    ]
    s2 = rows["S2"]
    # Intervals 10, 10 -> 2025-03-26 14:00 + 10 days; one backtested interval, a hit -> (1+1)/(1+2).
    assert (s2["expected_date"], s2["confidence"], s2["overdue"]) == (date(2025, 4, 5), D("0.667"), False)
    assert [i["sku"] for i in s2["expected_items"]] == ["SOAP"]  # in 2 of 3 recent orders
    s3 = rows["S3"]
    # One interval of an hour: expected 2025-03-10 20:00, long past the as-of time -> overdue; no evidence -> 0.5.
    assert (s3["expected_date"], s3["overdue"], s3["confidence"]) == (date(2025, 3, 10), True, D("0.500"))


def test_product_associations(gold: psycopg.Connection[dict[str, Any]]) -> None:
    rows = {(r["antecedent_sku"], r["consequent_sku"]): r
            for r in _rows(gold, "SELECT * FROM gold.product_associations")}
    # Baskets: COLA in 6, CHIPS in 5, BREAD in 3, SOAP in 4 of 10. Pairs: COLA+CHIPS 5, COLA+BREAD 2,
    # CHIPS+BREAD 1 and BREAD+SOAP 1 (both below the minimum of 2 baskets).
    assert set(rows) == {("COLA", "CHIPS"), ("CHIPS", "COLA"), ("COLA", "BREAD"), ("BREAD", "COLA")}
    chips_cola = rows[("CHIPS", "COLA")]
    # support 5/10; confidence 5/5; lift 1.0 / (6/10)
    assert (chips_cola["support"], chips_cola["confidence"], chips_cola["lift"]) == (
        D("0.500000"), D("1.0000"), D("1.6667"))
    bread_cola = rows[("BREAD", "COLA")]
    # support 2/10; confidence 2/3; lift (2/3) / (6/10) = 10/9
    assert (bread_cola["support"], bread_cola["confidence"], bread_cola["lift"]) == (
        D("0.200000"), D("0.6667"), D("1.1111"))
    assert (bread_cola["pair_orders"], bread_cola["antecedent_orders"], bread_cola["consequent_orders"],
            bread_cola["total_orders"]) == (2, 3, 6, 10)


def test_gold_totals_equal_silver_totals(gold: psycopg.Connection[dict[str, Any]]) -> None:
    (silver,) = _rows(gold, "SELECT sum(total_amount) AS revenue, count(*) AS orders FROM silver.transactions")
    (lines,) = _rows(gold, "SELECT sum(line_amount) AS revenue FROM silver.line_items")
    assert silver == {"revenue": D("845.00"), "orders": 10}
    for query, expected in [
        ("SELECT sum(revenue) AS v FROM gold.sales_by_store_day", silver["revenue"]),
        ("SELECT sum(revenue) AS v FROM gold.sales_by_hour", silver["revenue"]),
        ("SELECT sum(revenue) AS v FROM gold.basket_metrics", silver["revenue"]),
        ("SELECT revenue AS v FROM gold.dashboard_summary", silver["revenue"]),
        ("SELECT sum(revenue) AS v FROM gold.sales_by_category_day", lines["revenue"]),
    ]:
        assert _rows(gold, query) == [{"v": expected}], query


def test_gold_views_list_matches_the_database(database: str) -> None:
    """GOLD_VIEWS names every gold materialized view, each with a unique index, and the plain gold views fed by
    an aggregate; its depends_on are exactly the gold views its SQL reads (from the catalogue), listed before it;
    every aggregate it names is a table in schema agg."""
    with psycopg.connect(database) as conn:
        matviews = {r[0] for r in conn.execute(
            "SELECT schemaname || '.' || matviewname FROM pg_matviews WHERE schemaname = 'gold'")}
        plain = {r[0] for r in conn.execute(
            "SELECT schemaname || '.' || viewname FROM pg_views WHERE schemaname = 'gold'")}
        aggregates = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'agg'")}
        unique = {r[0] for r in conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_indexes WHERE schemaname = 'gold' "
            "AND indexdef LIKE 'CREATE UNIQUE INDEX%' AND indexdef NOT LIKE '% WHERE %'")}
        reads = conn.execute(
            """
            SELECT DISTINCT v.oid::regclass::text, r.refobjid::regclass::text
            FROM pg_class v
            JOIN pg_rewrite w ON w.ev_class = v.oid
            JOIN pg_depend r ON r.objid = w.oid AND r.classid = 'pg_rewrite'::regclass
            JOIN pg_class t ON t.oid = r.refobjid AND t.relkind IN ('m', 'v')
                           AND t.relnamespace = 'gold'::regnamespace
            WHERE v.relkind IN ('m', 'v') AND v.relnamespace = 'gold'::regnamespace AND r.refobjid <> v.oid
            """
        ).fetchall()
    assert {v.name for v in GOLD_VIEWS if v.materialized} == matviews
    assert {v.name for v in GOLD_VIEWS if not v.materialized} <= plain
    assert all(v.aggregate is not None for v in GOLD_VIEWS if not v.materialized)
    assert {v.aggregate for v in GOLD_VIEWS if v.aggregate} <= aggregates
    assert matviews <= unique
    declared = {(v.name, d) for v in GOLD_VIEWS for d in v.depends_on}
    assert declared == {(v, d) for v, d in reads if v in {g.name for g in GOLD_VIEWS}}
