"""Gold refresh: concurrent refresh under an advisory lock, skipped when silver has not moved."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import psycopg
from psycopg_pool import ConnectionPool

from jobs.gold import GOLD_VIEWS, RefreshResult, refresh_gold
from jobs.registry import run_job
from scout.settings import Settings
from tests.factories import tx_dict
from tests.integration.test_silver_step import _drain_all, _seed


def _pool(dsn: str) -> ConnectionPool:
    return ConnectionPool(dsn, min_size=1, max_size=2, open=True)


PLATINUM = {v.name for v in GOLD_VIEWS if v.depends_on}


def _statuses(results: list[RefreshResult]) -> dict[str, tuple[str, str | None]]:
    return {r.view: (r.status, r.reason) for r in results}


def test_refresh_then_skip_until_silver_moves(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(n, store=f"STORE-{n % 2}") for n in range(10)]))
    asyncio.run(_drain_all(database, 100))
    with _pool(database) as pool:
        first = refresh_gold(pool)
        second = refresh_gold(pool)
        asyncio.run(_seed(database, [tx_dict(100)]))
        asyncio.run(_drain_all(database, 100))
        third = refresh_gold(pool)
    assert [r.view for r in first] == [v.name for v in GOLD_VIEWS]
    assert {r.status for r in first} == {"refreshed"}
    assert _statuses(second) == {
        v.name: ("skipped", "no input view refreshed since" if v.name in PLATINUM else "no new silver data")
        for v in GOLD_VIEWS
    }
    assert {r.status for r in third} == {"refreshed"}
    assert {r.watermark for r in third} == {(first[0].watermark or 0) + 1}
    with psycopg.connect(database) as conn:
        gold = conn.execute("SELECT sum(orders), sum(revenue) FROM gold.sales_by_store_day").fetchone()
        dashboard = conn.execute("SELECT orders, revenue FROM gold.dashboard_summary").fetchone()
        silver = conn.execute("SELECT count(*), sum(total_amount) FROM silver.transactions").fetchone()
        log = conn.execute("SELECT status FROM ops.gold_refresh_log WHERE view_name = 'gold.store_segments' "
                           "ORDER BY id").fetchall()
    assert gold == dashboard == silver == (11, Decimal("550.00"))
    assert [s for (s,) in log] == ["refreshed", "skipped", "refreshed"]


def test_platinum_view_waits_for_its_input_refreshed_by_anyone(database: str) -> None:
    """While another replica holds an input's lock, the platinum view is not refreshed from the stale
    input; once the input is refreshed (by whoever), the platinum view follows on the next pass."""
    asyncio.run(_seed(database, [tx_dict(n) for n in range(3)]))
    asyncio.run(_drain_all(database, 100))
    key = "scout.gold.gold.sales_by_store_day"
    with psycopg.connect(database, autocommit=True) as holder, _pool(database) as pool:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
        blocked = _statuses(refresh_gold(pool))
        holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])
        refresh_gold(pool, views=(GOLD_VIEWS[0],))  # "the other replica" refreshes the input only
        after = _statuses(refresh_gold(pool))
        asyncio.run(_seed(database, [tx_dict(50)]))
        asyncio.run(_drain_all(database, 100))
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
        stale_input = _statuses(refresh_gold(pool))
    assert blocked["gold.sales_by_store_day"] == ("skipped", "another refresh holds the lock")
    assert blocked["gold.store_segments"] == ("skipped", "an input view has not been refreshed yet")
    assert blocked["gold.dashboard_summary"] == ("skipped", "an input view has not been refreshed yet")
    assert blocked["gold.sales_by_product_day"] == ("refreshed", None)
    assert after["gold.store_segments"] == ("refreshed", None)
    assert after["gold.dashboard_summary"] == ("refreshed", None)
    assert stale_input["gold.store_segments"] == ("skipped", "no input view refreshed since")
    assert stale_input["gold.dashboard_summary"] == ("skipped", "no input view refreshed since")
    assert stale_input["gold.sales_by_product_day"] == ("refreshed", None)


def test_a_failed_view_stops_its_dependants_only(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(1)]))
    asyncio.run(_drain_all(database, 10))
    with psycopg.connect(database, autocommit=True) as conn:
        # The recomputed day cannot be written: the refresh of the view on that aggregate fails.
        conn.execute("ALTER TABLE agg.store_day ADD CONSTRAINT refuse_every_day CHECK (orders < 0) NOT VALID")
    with _pool(database) as pool:
        results = _statuses(refresh_gold(pool))
    assert results["gold.sales_by_store_day"][0] == "failed"
    assert "refuse_every_day" in (results["gold.sales_by_store_day"][1] or "")
    assert results["gold.store_segments"] == ("skipped", "an input view failed")
    assert results["gold.dashboard_summary"] == ("skipped", "an input view failed")
    assert results["gold.sales_by_hour"] == ("refreshed", None)
    with psycopg.connect(database) as conn:
        logged = dict(conn.execute("SELECT view_name, status FROM ops.gold_refresh_log").fetchall())
    assert logged["gold.sales_by_store_day"] == "failed"
    assert logged["gold.store_segments"] == "skipped"


def test_a_view_held_by_another_refresher_is_skipped(database: str) -> None:
    key = f"scout.gold.{GOLD_VIEWS[0].name}"
    with psycopg.connect(database, autocommit=True) as holder, _pool(database) as pool:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
        results = refresh_gold(pool, force=True, views=GOLD_VIEWS[:1])
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


def test_analytical_views_have_their_own_job(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(1)]))
    asyncio.run(_drain_all(database, 10))
    settings = Settings(database_url=database)  # type: ignore[arg-type]
    with _pool(database) as pool:
        core = run_job("gold-refresh", pool, settings)
        analytical = run_job("gold-analytics", pool, settings)
    assert set(analytical) == {"gold.next_order_predictions", "gold.product_associations"}
    assert set(core) == {v.name for v in GOLD_VIEWS} - set(analytical)
    assert {d["status"] for d in [*core.values(), *analytical.values()]} == {"refreshed"}
