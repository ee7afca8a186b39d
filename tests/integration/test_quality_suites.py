"""The Great Expectations suites on real PostgreSQL: a broken gold total is caught (silver tampered with after
a refresh), gold that is merely behind is not a wrong total but goes stale, link coverage and fuzzy share are
judged on the recent window, and `scout quality run` prints the table."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cli.main import app
from jobs.gold import GOLD_VIEWS, refresh_gold
from jobs.products import import_products, read_catalogue_csv
from quality.rules import Thresholds
from quality.runner import QualityReport, run_quality
from quality.suites import CheckResult
from scout.settings import Settings
from streams.silver.catalogue import CatalogueCache
from streams.silver.step import drain_once
from tests.factories import tx_dict
from tests.integration.quality_support import feed, pool, quality_settings, rows, seed

VIEW = "gold.sales_by_store_day"


def _by_name(report: QualityReport) -> dict[str, CheckResult]:
    return {r.check.name: r for r in report.results}


def _gold_ready(dsn: str, settings: Settings) -> None:
    feed(dsn, [tx_dict(n, store=f"STORE-{n % 2}") for n in range(1, 11)], settings)
    with pool(dsn) as p:
        refresh_gold(p)


def test_a_silver_row_deleted_after_a_refresh_breaks_the_gold_total(database: str) -> None:
    settings = quality_settings(database)
    _gold_ready(database, settings)
    with pool(database) as p:
        clean = _by_name(run_quality(p, settings, suite="gold"))
        assert set(clean) == {f"gold_totals[{VIEW}]", "gold_freshness"}
        assert all(r.success for r in clean.values()), clean

        with p.connection() as conn:  # behind the pipeline's back: silver changes, the watermark does not
            conn.execute("DELETE FROM silver.transactions WHERE transaction_id = 'TXN-000003'")
        broken = _by_name(run_quality(p, settings, suite="gold"))[f"gold_totals[{VIEW}]"]
        assert (broken.success, broken.unexpected_count, broken.check.severity) == (False, 1, "critical")
        assert broken.failing == [{"key": "STORE-1 2026-01-05",
                                   "detail": "gold orders/lines/revenue 5/5/250.00, silver 4/4/200.00"}]
        assert rows(database, "SELECT rule, subject, severity FROM ops.alerts WHERE resolved_at IS NULL") == [
            ("gold_totals", VIEW, "critical")]

        with p.connection() as conn:
            conn.execute("UPDATE silver.transactions SET total_amount = total_amount + 1 "
                         "WHERE transaction_id = 'TXN-000004'")
        refresh_gold(p, force=True)  # gold recomputed from silver: the totals agree again
        report = run_quality(p, settings, suite="gold")
        assert report.alerts.resolved == [f"gold_totals[{VIEW}]"] and not report.failed


def test_an_amount_changed_after_a_refresh_is_caught(database: str) -> None:
    settings = quality_settings(database)
    _gold_ready(database, settings)
    with pool(database) as p:
        with p.connection() as conn:
            conn.execute("UPDATE silver.transactions SET total_amount = 51.00 WHERE transaction_id = 'TXN-000002'")
        result = _by_name(run_quality(p, settings, suite="gold"))[f"gold_totals[{VIEW}]"]
    assert not result.success
    assert result.failing[0]["detail"] == "gold orders/lines/revenue 5/5/250.00, silver 5/5/251.00"


def test_gold_behind_silver_is_not_a_wrong_total_but_goes_stale(database: str) -> None:
    settings = quality_settings(database)
    _gold_ready(database, settings)
    feed(database, [tx_dict(50)], settings, offset=100)  # silver moves on; gold not refreshed yet
    with pool(database) as p:
        behind = _by_name(run_quality(p, settings, suite="gold"))
        assert behind[f"gold_totals[{VIEW}]"].success and behind["gold_freshness"].success
        strict = quality_settings(database, gold_max_staleness_s=0.001)
        stale = _by_name(run_quality(p, strict, suite="gold"))["gold_freshness"]
        assert (stale.success, stale.check.severity) == (False, "warning")
        failing = {f["key"]: f["detail"] for f in stale.failing}
        assert set(failing) == {v.name for v in GOLD_VIEWS}  # every view is behind the new silver row
        assert failing[VIEW].startswith("at silver version 1 of 2")
        refresh_gold(p)
        assert run_quality(p, strict, suite="gold").alerts.resolved == ["gold_freshness"]


def test_link_coverage_and_fuzzy_share_on_the_recent_window(database: str, tmp_path: Path) -> None:
    catalogue = tmp_path / "products.csv"
    catalogue.write_text("sku,name\n79323P,PINK CHERRY LIGHTS\n", encoding="utf-8")
    with psycopg.connect(database) as conn:
        import_products(conn, read_catalogue_csv(catalogue))
    bodies = []
    for n, name in enumerate(["PINK CHERY LIGHTS", "PINK CHERRY LIGTHS", "PINK CHERRY LIGHTS", "Mystery item"], 1):
        body = tx_dict(n)
        body["items"][0] = {"product_name": name, "qty": 2, "unit_price": "25.00"}
        bodies.append(body)
    seed(database, bodies)
    settings = quality_settings(database)

    async def drain() -> None:
        cache = CatalogueCache(threshold=80, refresh_s=0)
        async with await psycopg.AsyncConnection.connect(database) as conn:
            limits = Thresholds.from_settings(settings)
            while (await drain_once(conn, limit=10, limits=limits, catalogue=await cache.current(conn))).claimed:
                pass

    asyncio.run(drain())
    methods = sorted(m for (m,) in rows(database, "SELECT link_method FROM silver.line_items"))
    assert methods == ["fuzzy", "fuzzy", "name", "unlinked"]
    since = datetime.now(UTC) - timedelta(minutes=5)
    with pool(database) as p:
        results = _by_name(run_quality(p, settings, suite="silver", since=since))
        coverage, fuzzy = results["link_coverage"], results["fuzzy_link_share"]
        assert (coverage.success, coverage.observed, coverage.unexpected_count) == (
            False, "coverage 0.7500 of 4 lines, minimum 0.95", 1)
        assert (fuzzy.success, fuzzy.observed, fuzzy.unexpected_count) == (
            False, "fuzzy share 0.5000 of 4 lines, maximum 0.2", 2)
        assert {coverage.check.severity, fuzzy.check.severity} == {"warning"}
        lenient = quality_settings(database, link_coverage_min=0.75, fuzzy_link_share_max=0.5)
        passed = _by_name(run_quality(p, lenient, suite="silver", since=since))
        assert passed["link_coverage"].success and passed["fuzzy_link_share"].success
        too_few = quality_settings(database, quality_min_lines=5)  # 4 lines: too few to judge
        assert _by_name(run_quality(p, too_few, suite="silver", since=since))["link_coverage"].success


def test_scout_quality_run_prints_the_table_and_exits_1_on_failure(database: str) -> None:
    settings = quality_settings(database)
    _gold_ready(database, settings)
    runner = CliRunner()
    env = {"SCOUT_DATABASE_URL": database, "SCOUT_QUALITY_MIN_LINES": "1", "COLUMNS": "200"}
    passed = runner.invoke(app, ["quality", "run", "--suite", "gold"], env=env)
    assert passed.exit_code == 0, passed.output
    assert "gold_totals[gold.sales_by_store_day]" in passed.output and "pass" in passed.output
    with psycopg.connect(database) as conn:
        conn.execute("DELETE FROM silver.transactions WHERE transaction_id = 'TXN-000001'")
    failed = runner.invoke(app, ["quality", "run", "--suite", "gold"], env=env)
    assert failed.exit_code == 1, failed.output
    assert "FAIL" in failed.output and "STORE-1 2026-01-05" in failed.output
    assert "1 opened" in failed.output
    listed = runner.invoke(app, ["quality", "alerts"], env=env)
    assert listed.exit_code == 0 and "gold_totals" in listed.output
    bad = runner.invoke(app, ["quality", "run", "--suite", "platinum"], env=env)
    assert bad.exit_code == 2


def test_the_suites_make_no_network_calls_and_write_nothing(database: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    settings = quality_settings(database)
    _gold_ready(database, settings)
    contacted: list[object] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: object) -> object:  # PostgreSQL is reached by libpq, not here
        contacted.append(address)
        return real_connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.chdir(tmp_path)
    with pool(database) as p:
        report = run_quality(p, settings)
    assert report.results and not report.failed and not report.errors
    assert contacted == []
    assert list(tmp_path.iterdir()) == []  # an ephemeral context: no gx/ folder, no data docs


def test_a_line_without_its_transaction_or_a_transaction_without_its_store_fails_the_silver_suite(
        database: str) -> None:
    settings = quality_settings(database)
    feed(database, [tx_dict(n) for n in range(1, 4)], settings)
    since = datetime.now(UTC) - timedelta(minutes=5)
    with pool(database) as p:
        assert _by_name(run_quality(p, settings, suite="silver", since=since))["orphan_rows"].success
        with psycopg.connect(database, autocommit=True) as conn:  # no foreign keys stop these (migration 0024)
            conn.execute("INSERT INTO silver.line_items (txn_id, line_no, qty, unit_price, line_amount, link_method,"
                         " link_confidence) SELECT max(txn_id) + 10, 1, 1, 1.00, 1.00, 'unlinked', 0"
                         " FROM silver.transactions")
            conn.execute("UPDATE silver.transactions SET store_id = 'STORE-NOWHERE' "
                         "WHERE txn_id = (SELECT min(txn_id) FROM silver.transactions)")
        broken = _by_name(run_quality(p, settings, suite="silver", since=since))["orphan_rows"]
    assert (broken.success, broken.unexpected_count, broken.check.severity) == (False, 2, "critical")
    assert broken.observed.startswith("1 line items without their transaction")
    assert "1 transactions without their store (first: STORE-NOWHERE)" in broken.observed


def test_deleting_a_transaction_deletes_its_lines(database: str) -> None:
    settings = quality_settings(database)
    feed(database, [tx_dict(n) for n in range(1, 4)], settings)
    with psycopg.connect(database) as conn:
        conn.execute("DELETE FROM silver.transactions WHERE transaction_id = 'TXN-000002'")
        left = conn.execute("SELECT count(*), count(*) FILTER (WHERE t.txn_id IS NULL) FROM silver.line_items l "
                            "LEFT JOIN silver.transactions t USING (txn_id)").fetchone()
    assert left == (2, 0)


def test_a_line_item_whose_product_is_gone_fails_the_silver_suite(database: str) -> None:
    settings = quality_settings(database)
    feed(database, [tx_dict(n) for n in range(1, 4)], settings)
    since = datetime.now(UTC) - timedelta(minutes=5)
    with pool(database) as p:
        assert _by_name(run_quality(p, settings, suite="silver", since=since))["unknown_product"].success
        with psycopg.connect(database, autocommit=True) as conn:  # no foreign key stops this (migration 0022)
            conn.execute("UPDATE silver.line_items SET product_key = 999999 "
                         "WHERE txn_id = (SELECT min(txn_id) FROM silver.line_items)")
        broken = _by_name(run_quality(p, settings, suite="silver", since=since))["unknown_product"]
    assert (broken.success, broken.unexpected_count, broken.check.severity) == (False, 1, "critical")
    assert broken.observed.startswith("1 lines link to no product")
