"""Gold refresh: concurrent refresh under an advisory lock, skipped when silver has not moved."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import psycopg
from psycopg_pool import ConnectionPool

from jobs.gold import GOLD_VIEWS, refresh_gold
from jobs.registry import run_job
from scout.settings import Settings
from tests.factories import tx_dict
from tests.integration.test_silver_step import _drain_all, _seed


def _pool(dsn: str) -> ConnectionPool:
    return ConnectionPool(dsn, min_size=1, max_size=2, open=True)


def test_refresh_then_skip_until_silver_moves(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(n, store=f"STORE-{n % 2}") for n in range(10)]))
    asyncio.run(_drain_all(database, 100))
    with _pool(database) as pool:
        first = refresh_gold(pool)
        second = refresh_gold(pool)
        asyncio.run(_seed(database, [tx_dict(100)]))
        asyncio.run(_drain_all(database, 100))
        third = refresh_gold(pool)
    assert [r.status for r in first] == ["refreshed"]
    assert [(r.status, r.reason) for r in second] == [("skipped", "no new silver data")]
    assert [r.status for r in third] == ["refreshed"]
    with psycopg.connect(database) as conn:
        gold = conn.execute("SELECT sum(orders), sum(revenue) FROM gold.sales_by_store_day").fetchone()
        silver = conn.execute("SELECT count(*), sum(total_amount) FROM silver.transactions").fetchone()
        log = conn.execute("SELECT status FROM ops.gold_refresh_log ORDER BY id").fetchall()
    assert gold == silver == (11, Decimal("550.00"))
    assert [s for (s,) in log] == ["refreshed", "skipped", "refreshed"]


def test_a_view_held_by_another_refresher_is_skipped(database: str) -> None:
    key = f"scout.gold.{GOLD_VIEWS[0].name}"
    with psycopg.connect(database, autocommit=True) as holder, _pool(database) as pool:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
        results = refresh_gold(pool, force=True)
    assert [(r.status, r.reason) for r in results] == [("skipped", "another refresh holds the lock")]


def test_job_runs_are_recorded_and_reader_sees_gold(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(1)]))
    asyncio.run(_drain_all(database, 10))
    with _pool(database) as pool:
        details = run_job("gold-refresh", pool, Settings(database_url=database))  # type: ignore[arg-type]
    assert details["gold.sales_by_store_day"]["status"] == "refreshed"
    with psycopg.connect(database) as conn:
        run = conn.execute("SELECT job_name, status FROM ops.job_runs").fetchall()
        conn.execute("SET ROLE scout_reader")
        orders = conn.execute("SELECT sum(orders) FROM gold.sales_by_store_day").fetchone()
    assert run == [("gold-refresh", "succeeded")]
    assert orders == (1,)


def test_late_transactions_land_in_their_business_day(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(1, ts="2026-01-05T10:00:00Z"), tx_dict(2, ts="2026-01-05T23:59:59+00:00")]))
    asyncio.run(_drain_all(database, 100))
    with _pool(database) as pool:
        refresh_gold(pool)
        # arrives days later, stamped in another zone: 2026-01-04 23:30 UTC
        asyncio.run(_seed(database, [tx_dict(3, ts="2026-01-05T07:30:00+08:00")]))
        asyncio.run(_drain_all(database, 100))
        refresh_gold(pool)
    with psycopg.connect(database) as conn:
        days = conn.execute("SELECT day::text, orders FROM gold.sales_by_store_day ORDER BY day").fetchall()
    assert days == [("2026-01-04", 1), ("2026-01-05", 2)]
