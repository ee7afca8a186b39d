"""Quality guardrails in the running pipeline (`scout api`, `scout worker`, `scout scheduler` as processes):
a critical breaker is quarantined and alerted on (GET /v1/alerts, scout_alerts_active, the webhook), a
warning breaker lands and is counted on the worker's metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.test_pipeline import _metric, _post_all
from tests.e2e.workers import Pipeline, pipeline_processes
from tests.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as hook:
        yield hook


@pytest.fixture
def pipeline(settings: Settings, receiver: Receiver) -> Iterator[Pipeline]:
    with pipeline_processes(settings, token=("--name", "quality device", "--all-stores", "--scope", "ingest",
                                             "--scope", "read", "--rate-limit", "100000"),
                            quality_interval_s="1", quality_severities='{"future_timestamp": "warning"}',
                            alert_webhook_url=receiver.url, alert_webhook_format="alertmanager") as running:
        yield running


def _alerts(pipeline: Pipeline) -> list[dict[str, Any]]:
    response = httpx.get(f"{pipeline.url}/v1/alerts", timeout=5,
                         headers={"Authorization": f"Bearer {pipeline.token}"})
    return response.json()["alerts"]  # type: ignore[no-any-return]


def test_breakers_are_quarantined_or_counted_and_alerts_reach_every_channel(
        pipeline: Pipeline, settings: Settings, receiver: Receiver) -> None:
    gen = Generator(seed=3)
    clean = [gen.transaction(n) for n in range(20)]
    over = {**gen.transaction(100), "transaction_id": "TXN-OVER", "total_amount": "20000.00",
            "items": [{"product_id": "SKU-0001", "qty": 1, "unit_price": "20000.00"}]}
    future = {**gen.transaction(101), "transaction_id": "TXN-FUTURE",
              "ts": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    responses = asyncio.run(_post_all(pipeline.url, pipeline.token, [*clean, over, future]))
    assert [r.status_code for r in responses] == [202] * 22

    alerts = eventually(lambda: _alerts(pipeline), until=lambda a: {x["rule"] for x in a} >= {
        "over_threshold", "future_timestamp"}, timeout=120, what="alerts for both rules from the scheduler")
    by_rule = {a["rule"]: a for a in alerts}
    assert by_rule["over_threshold"]["severity"] == "critical"
    assert by_rule["future_timestamp"]["severity"] == "warning"
    assert [k["key"] for k in by_rule["over_threshold"]["details"]["failing_keys"]] == [f"{over['store_id']}/TXN-OVER"]

    dsn = settings.database_dsn()
    with psycopg.connect(dsn) as conn:
        held = conn.execute("SELECT transaction_id, reasons FROM silver.quarantine").fetchall()
        warned = conn.execute("SELECT t.transaction_id, w.rule FROM silver.transaction_warnings w "
                              "JOIN silver.transactions t USING (txn_id)").fetchall()
    assert held == [("TXN-OVER", ["over_threshold"])]
    assert warned == [("TXN-FUTURE", "future_timestamp")]
    assert _metric(pipeline.worker_metrics, "scout_quality_warnings_total", {"rule": "future_timestamp"}) == 1
    eventually(lambda: _metric(pipeline.scheduler_metrics, "scout_alerts_active",
                               {"rule": "over_threshold", "severity": "critical"}),
               until=lambda v: v == 1, timeout=30, what="scout_alerts_active on the scheduler")
    sent = eventually(lambda: {a["labels"]["rule"] for body in receiver.bodies for a in body["alerts"]},
                      until=lambda rules: {"over_threshold", "future_timestamp"} <= rules, timeout=30,
                      what="the webhook to receive both alerts")
    assert sent >= {"over_threshold", "future_timestamp"}
