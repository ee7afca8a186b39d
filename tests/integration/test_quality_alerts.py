"""Alerts from failing checks on real PostgreSQL: opened once, updated on repeat, resolved after clean data;
exported as scout_alerts_active, listed by GET /v1/alerts, recorded as history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from ingest_api.app import create_app
from ingest_api.auth import Authenticator
from jobs.registry import run_job
from quality.runner import QualityChecksFailed, run_quality
from scout.db import open_async_pool
from scout.settings import Settings
from streams.silver.quarantine import replay
from tests.factories import tx_dict
from tests.integration.quality_support import breaking, feed, pool, quality_settings, rows


def _active(rule: str, severity: str) -> float | None:
    return REGISTRY.get_sample_value("scout_alerts_active", {"rule": rule, "severity": severity})


def _alerts(dsn: str) -> list[tuple[Any, ...]]:
    return rows(dsn, "SELECT rule, subject, severity, count, first_seen < last_seen, resolved_at IS NOT NULL "
                     "FROM ops.alerts ORDER BY id")


async def _get_alerts(settings: Settings, **params: Any) -> httpx.Response:
    open_settings = settings.model_copy(update={"auth_required": False})  # auth has its own tests
    app = create_app(open_settings)  # no lifespan: only what this route needs
    app.state.pool = await open_async_pool(settings, name="test-api")
    app.state.authenticator = Authenticator(open_settings, None)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return await client.get("/v1/alerts", params=params)
    finally:
        await app.state.pool.close()


def test_an_alert_opens_once_updates_on_repeat_and_resolves_after_clean_data(database: str) -> None:
    settings = quality_settings(database)
    window = datetime.now(UTC) - timedelta(minutes=5)
    feed(database, [breaking(1, "over_threshold"), tx_dict(2)], settings)
    with pool(database) as p:
        first = run_quality(p, settings, suite="silver", since=window)
        assert (first.alerts.opened, first.alerts.updated) == (["over_threshold"], [])
        assert _active("over_threshold", "critical") == 1

        feed(database, [breaking(3, "over_threshold")], settings, offset=10)  # the same rule broken again
        second = run_quality(p, settings, suite="silver", since=window)
        assert (second.alerts.opened, second.alerts.updated) == ([], ["over_threshold"])
        assert _alerts(database) == [("over_threshold", "", "critical", 2, True, False)]
        assert _active("over_threshold", "critical") == 1

        listed = asyncio.run(_get_alerts(settings)).json()["alerts"]
        assert [(a["rule"], a["severity"], a["status"], a["count"]) for a in listed] == [
            ("over_threshold", "critical", "active", 2)]
        keys = {k["key"] for k in listed[0]["details"]["failing_keys"]}
        assert keys == {"STORE-001/TXN-000001", "STORE-001/TXN-000003"}
        assert listed[0]["details"]["runbook"] == "docs/RUNBOOK.md#quality-over-threshold"

        clean_since = datetime.now(UTC)  # from here on the window holds only clean transactions
        feed(database, [tx_dict(4), tx_dict(5)], settings, offset=20)
        third = run_quality(p, settings, suite="silver", since=clean_since)
        assert third.alerts.resolved == ["over_threshold"] and not third.failed

    assert _alerts(database) == [("over_threshold", "", "critical", 2, True, True)]
    assert _active("over_threshold", "critical") is None
    assert asyncio.run(_get_alerts(settings)).json() == {"alerts": []}
    resolved = asyncio.run(_get_alerts(settings, status="all")).json()["alerts"]
    assert [(a["rule"], a["status"]) for a in resolved] == [("over_threshold", "resolved")]
    history = rows(database, "SELECT r.success, q.success, q.observed_value, q.unexpected_count, "
                             "jsonb_array_length(q.failing_keys) FROM ops.quality_results q "
                             "JOIN ops.quality_runs r ON r.id = q.run_id "
                             "WHERE q.rule = 'over_threshold' ORDER BY q.id")
    assert history == [(False, False, "1 unexpected row", 1, 1), (False, False, "2 unexpected rows", 2, 2),
                       (True, True, "0 unexpected rows", 0, 0)]


def test_replaying_after_the_fix_resolves_the_alert(database: str) -> None:
    settings = quality_settings(database)
    window = datetime.now(UTC) - timedelta(minutes=5)
    feed(database, [breaking(1, "over_threshold")], settings)
    with pool(database) as p:
        assert run_quality(p, settings, suite="silver", since=window).alerts.opened == ["over_threshold"]
        raised = quality_settings(database, max_transaction_amount="50000")  # the fix: a higher threshold
        with p.connection() as conn:
            assert len(replay(conn, reason="over_threshold")) == 1
        feed(database, [], raised)
        assert run_quality(p, raised, suite="silver", since=window).alerts.resolved == ["over_threshold"]
    assert rows(database, "SELECT transaction_id FROM silver.transactions") == [("TXN-000001",)]


def test_the_job_records_its_run_and_a_check_that_cannot_run_fails_it(database: str) -> None:
    settings = quality_settings(database)
    feed(database, [tx_dict(1), breaking(2, "line_sum_mismatch")], settings)
    with pool(database) as p:
        details = run_job("quality-checks", p, settings)
        assert details["suites"]["silver"]["failed"] == ["line_sum_mismatch"]
        assert details["alerts"]["opened"] == ["line_sum_mismatch"]
        with p.connection() as conn:  # the freshness check's batch is gone: that check cannot run
            conn.execute("ALTER TABLE ops.gold_refresh_state RENAME TO gold_refresh_state_gone")
        with pytest.raises(QualityChecksFailed, match="gold_freshness"):
            run_job("quality-checks", p, settings)
    assert rows(database, "SELECT status FROM ops.job_runs ORDER BY id") == [("succeeded",), ("failed",)]
    alerts = rows(database, "SELECT rule, count, resolved_at IS NULL FROM ops.alerts")
    assert alerts == [("line_sum_mismatch", 2, True)]  # errored checks neither open nor resolve anything
    errors = rows(database, "SELECT rule FROM ops.quality_results WHERE error IS NOT NULL ORDER BY rule")
    assert errors == [("gold_freshness",), ("gold_totals",)]  # both read ops.gold_refresh_state


def test_an_alert_whose_check_is_gone_resolves(database: str) -> None:
    settings = quality_settings(database)
    with pool(database) as p:
        with p.connection() as conn:  # an alert about a gold view that has since been dropped
            conn.execute("INSERT INTO ops.alerts (rule, subject, severity, message) "
                         "VALUES ('gold_totals', 'gold.dropped_view', 'critical', 'm')")
        assert run_quality(p, settings, suite="silver").alerts.resolved == []  # not this suite's rule
        assert run_quality(p, settings, suite="gold").alerts.resolved == ["gold_totals[gold.dropped_view]"]
    assert _active("gold_totals", "critical") is None
