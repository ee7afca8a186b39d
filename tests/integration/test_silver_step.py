"""The silver step: claims bronze with SKIP LOCKED, writes silver once, quarantines by rule."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import psycopg

from quality.rules import Thresholds
from scout.settings import Settings
from streams.bronze.sink import land
from streams.silver.step import StepResult, drain_once
from tests.factories import bronze_row, tx_dict

LIMITS = Thresholds.from_settings(Settings())


async def _seed(dsn: str, bodies: list[dict]) -> None:  # type: ignore[type-arg]
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await land(conn, [bronze_row(b, offset=i) for i, b in enumerate(bodies)], [])


async def _drain_all(dsn: str, limit: int) -> list[StepResult]:
    results = []
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        while (r := await drain_once(conn, limit=limit, limits=LIMITS)).claimed:
            results.append(r)
    return results


def _scalar(dsn: str, query: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def test_bronze_rows_become_silver_transactions_and_lines(database: str) -> None:
    bodies = [tx_dict(n, store=f"STORE-{n % 3}") for n in range(120)]
    asyncio.run(_seed(database, bodies))
    results = asyncio.run(_drain_all(database, limit=50))
    assert [r.claimed for r in results] == [50, 50, 20]
    assert _scalar(database, "SELECT count(*) FROM silver.transactions") == 120
    assert _scalar(database, "SELECT count(*) FROM silver.line_items WHERE link_method = 'sku'") == 120
    assert _scalar(database, "SELECT count(*) FROM silver.stores") == 3
    assert _scalar(database, "SELECT sum(total_amount) FROM silver.transactions") == Decimal("6000.00")
    assert _scalar(database, "SELECT count(*) FROM bronze.pending") == 0
    assert _scalar(database, "SELECT version FROM ops.watermarks WHERE name = 'silver'") == 3


def test_rule_breakers_and_conflicting_duplicates_are_quarantined(database: str) -> None:
    clean = tx_dict(1)
    conflicting = tx_dict(1, qty=3, total="75.00")  # same store + transaction id, other content
    over = tx_dict(2, qty=1000, price="20.00")
    mismatch = tx_dict(3, total="99.00")
    asyncio.run(_seed(database, [clean, conflicting, over, mismatch]))
    asyncio.run(_drain_all(database, limit=10))
    with psycopg.connect(database) as conn:
        reasons = dict(conn.execute("SELECT transaction_id, reasons FROM silver.quarantine").fetchall())
    assert reasons == {"TXN-000001": ["conflicting_duplicate"], "TXN-000002": ["over_threshold"],
                       "TXN-000003": ["line_sum_mismatch"]}
    assert _scalar(database, "SELECT count(*) FROM silver.transactions") == 1
    assert _scalar(database, "SELECT total_amount FROM silver.transactions") == Decimal("50.00")


def test_name_only_items_link_by_normalised_name_or_stay_unlinked(database: str) -> None:
    known = tx_dict(1)
    known["items"][0]["product_name"] = "Coca-Cola 350ml"
    by_name = tx_dict(2)
    by_name["items"][0] = {"product_name": "  coca cola 350ML", "qty": 2, "unit_price": "25.00"}
    unknown = tx_dict(3)
    unknown["items"][0] = {"product_name": "Mystery item", "qty": 2, "unit_price": "25.00"}
    asyncio.run(_seed(database, [known]))
    asyncio.run(_drain_all(database, limit=10))
    asyncio.run(_seed(database, [by_name, unknown]))
    asyncio.run(_drain_all(database, limit=10))
    with psycopg.connect(database) as conn:
        methods = dict(conn.execute(
            "SELECT t.transaction_id, l.link_method FROM silver.line_items l JOIN silver.transactions t USING (txn_id)"
        ).fetchall())
    assert methods == {"TXN-000001": "sku", "TXN-000002": "name", "TXN-000003": "unlinked"}


def test_concurrent_workers_never_process_a_row_twice(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(n, store=f"STORE-{n % 5}") for n in range(600)]))

    async def both() -> list[list[StepResult]]:
        return await asyncio.gather(_drain_all(database, 25), _drain_all(database, 25), _drain_all(database, 25))

    runs = asyncio.run(both())
    claimed = sum(r.claimed for run in runs for r in run)
    assert claimed == 600
    assert sum(1 for run in runs if run) >= 2  # the work was actually shared
    assert _scalar(database, "SELECT count(*) FROM silver.transactions") == 600
    assert _scalar(database, "SELECT count(*) FROM silver.quarantine") == 0


def test_the_version_received_first_wins_whatever_order_silver_commits(database: str) -> None:
    first, later = tx_dict(1), tx_dict(1, qty=3, total="75.00")
    asyncio.run(_seed(database, [first, later]))  # bronze ids: first < later

    async def later_commits_first() -> None:
        async with await psycopg.AsyncConnection.connect(database) as conn, conn.transaction():
            cur = await conn.execute("SELECT id FROM bronze.transactions ORDER BY id")
            first_id = (await cur.fetchone())[0]  # type: ignore[index]
            await conn.execute("SELECT 1 FROM bronze.pending WHERE bronze_id = %s FOR UPDATE", [first_id])  # claimed
            async with await psycopg.AsyncConnection.connect(database) as other:
                await drain_once(other, limit=10, limits=LIMITS)  # a worker that sees only the later row
        await _drain_all(database, 10)

    asyncio.run(later_commits_first())
    with psycopg.connect(database) as conn:
        silver = conn.execute("SELECT total_amount FROM silver.transactions").fetchall()
        held = conn.execute("SELECT transaction_id, reasons, details->>'displaced' FROM silver.quarantine").fetchall()
        lines = conn.execute("SELECT count(*), sum(line_amount) FROM silver.line_items").fetchone()
    assert silver == [(Decimal("50.00"),)]
    assert held == [("TXN-000001", ["conflicting_duplicate"], "true")]
    assert lines == (1, Decimal("50.00"))
