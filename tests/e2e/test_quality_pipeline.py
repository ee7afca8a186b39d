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

from scout.cli.processes import Children, child_env
from scout.kafka import ensure_topics
from scout.services import free_port
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.test_pipeline import Pipeline, _metric, _post_all
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token
from tests.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as hook:
        yield hook


@pytest.fixture
def pipeline(settings: Settings, receiver: Receiver) -> Iterator[Pipeline]:
    ensure_topics(settings)
    port, worker_metrics, scheduler_metrics = free_port(), free_port(), free_port()
    env = child_env(
        database_url=settings.database_dsn(), kafka_bootstrap=settings.kafka_bootstrap, topic=settings.topic,
        dead_letter_topic=settings.dead_letter_topic, stream_app_id=settings.stream_app_id,
        api_port=str(port), worker_web_port=str(free_port()), data_dir=str(settings.data_dir),
        gold_refresh_interval_s="1", worker_metrics_port=str(worker_metrics),
        scheduler_metrics_port=str(scheduler_metrics), silver_idle_interval_s="0.1", bronze_batch_within_s="0.2",
        quality_interval_s="1", quality_severities='{"future_timestamp": "warning"}',
        alert_webhook_url=receiver.url, alert_webhook_format="alertmanager",
    )
    _, token = cli_token(env, "--name", "quality device", "--all-stores", "--scope", "ingest", "--scope", "read",
                         "--rate-limit", "100000")
    children = Children(env, settings.data_dir / "logs")
    for name in ("api", "worker", "scheduler"):
        children.start(name, name)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_api_ready(url)
        yield Pipeline(url, f"http://127.0.0.1:{worker_metrics}/metrics",
                       f"http://127.0.0.1:{scheduler_metrics}/metrics", token)
    finally:
        stop_and_show_logs(children)


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
