"""Done when for observability: a real Prometheus scrapes `scout api`, `scout worker` and `scout scheduler` with
Scout's own rules loaded; after some traffic every PromQL query of every dashboard panel and every alert rule
expression evaluates through its HTTP API without error, and the core panels show data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cli.processes import Children, child_env
from cli.services import free_port
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.dashboards import PROMETHEUS_UID, Query, promql, queries
from tests.e2e.prometheus import Prometheus, prometheus_server
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token
from tests.unit.test_deployment_files import alert_rules

TRANSACTIONS = 300
# Panels that must show data once the pipeline has handled traffic: (dashboard, panel title).
CORE_PANELS = {
    ("Pipeline overview", "Ingest requests/s by outcome"),
    ("Pipeline overview", "Ingest latency p99"),
    ("Pipeline overview", "Stage rows/s by stage and outcome"),
    ("Pipeline overview", "Consumer lag per partition"),
    ("Pipeline overview", "Bronze -> silver latency"),
    ("Pipeline overview", "Gold refreshes by status"),
    ("Pipeline overview", "Gold last refresh age"),
    ("Pipeline overview", "Scrape targets up"),
    ("Data quality", "Link method share"),
    ("Gold freshness", "Age of each gold view"),
    ("Gold freshness", "Rows per gold view"),
    ("Gold freshness", "Job runs by status"),
}
PROMQL_QUERIES = [q for q in queries() if q.datasource == PROMETHEUS_UID]


@dataclass(frozen=True)
class Observed:
    prometheus: Prometheus
    token: str
    api: str


@pytest.fixture(scope="module")
def observed(postgres, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory  # type: ignore[no-untyped-def]
             ) -> Iterator[Observed]:
    """The pipeline as processes, a Prometheus scraping them every second, and traffic through it all."""
    work = tmp_path_factory.mktemp("observed")
    dsn = postgres.fresh_database()
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(database_url=dsn, kafka_bootstrap=kafka_bootstrap,  # type: ignore[arg-type]
                        topic=f"pos.transactions.v1.{suffix}", dead_letter_topic=f"pos.transactions.dlq.v1.{suffix}",
                        stream_app_id=f"scout-obs-{suffix}", data_dir=work / "scout")
    ensure_topics(settings)
    api, worker, scheduler = free_port(), free_port(), free_port()
    env = child_env(
        database_url=dsn, kafka_bootstrap=kafka_bootstrap, topic=settings.topic,
        dead_letter_topic=settings.dead_letter_topic, stream_app_id=settings.stream_app_id,
        api_port=str(api), worker_web_port=str(free_port()), data_dir=str(settings.data_dir),
        worker_metrics_port=str(worker), scheduler_metrics_port=str(scheduler), gold_refresh_interval_s="1",
        quality_interval_s="2", consumer_lag_interval_s="1", silver_idle_interval_s="0.1",
        bronze_batch_within_s="0.2",
    )
    _, token = cli_token(env, "--name", "observability e2e", "--all-stores", "--rate-limit", "100000")
    children = Children(env, settings.data_dir / "logs")
    for name in ("api", "worker", "scheduler"):
        children.start(name, name)
    url = f"http://127.0.0.1:{api}"
    targets = {"scout-api": f"127.0.0.1:{api}", "scout-worker": f"127.0.0.1:{worker}",
               "scout-scheduler": f"127.0.0.1:{scheduler}"}
    try:
        wait_api_ready(url)
        with prometheus_server(targets, Path(work) / "prometheus") as prometheus:
            _send_traffic(url, token)
            eventually(lambda: _count(dsn, "SELECT count(*) FROM silver.transactions"),
                       until=lambda n: n == TRANSACTIONS, timeout=180, what="the traffic in silver")
            eventually(lambda: _count(dsn, "SELECT count(*) FROM ops.gold_refresh_state WHERE rows > 0"),
                       until=lambda n: n >= 1, timeout=60, what="a gold refresh of the traffic")
            yield Observed(prometheus, token, url)
    finally:
        stop_and_show_logs(children)


def _send_traffic(url: str, token: str) -> None:
    gen = Generator(seed=11)
    bodies: list[dict[str, Any]] = [gen.transaction(n) for n in range(TRANSACTIONS)]
    invalid = {**bodies[0], "transaction_id": "BAD-1", "total_amount": "not money"}

    async def post_all() -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as c:
            limit = asyncio.Semaphore(16)

            async def one(body: dict[str, Any]) -> int:
                async with limit:
                    return (await c.post("/v1/transactions", json=body)).status_code

            return await asyncio.gather(*(one(b) for b in [*bodies, invalid]))

    statuses = asyncio.run(post_all())
    assert statuses[:-1] == [202] * TRANSACTIONS and statuses[-1] == 422


def _count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _series(prometheus: Prometheus, query: Query) -> list[Any]:
    return list(prometheus.api("query", query=promql(query))["result"])


def test_prometheus_scrapes_every_process_and_loads_every_rule(observed: Observed) -> None:
    def health() -> dict[str, str]:
        return {t["labels"]["job"]: t["health"] for t in observed.prometheus.api("targets")["activeTargets"]}

    jobs = eventually(health, until=lambda h: set(h.values()) == {"up"}, timeout=30, what="every target up")
    assert set(jobs) == {"scout-api", "scout-worker", "scout-scheduler", "prometheus"}
    groups = observed.prometheus.api("rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {rule["alert"] for rule in alert_rules()}
    for name, rule in loaded.items():
        assert rule["health"] != "err", (name, rule.get("lastError"))


def test_the_core_panels_show_data(observed: Observed) -> None:
    core = [q for q in PROMQL_QUERIES if (q.dashboard, q.panel) in CORE_PANELS]
    assert {(q.dashboard, q.panel) for q in core} == CORE_PANELS
    for query in core:
        if query.ref_id == "A":
            eventually(lambda q=query: _series(observed.prometheus, q), until=bool,  # type: ignore[misc]
                       timeout=60, what=f"data for {query.name}")
    # the figures behind them are the traffic's
    accepted = _series(observed.prometheus, Query("", "", "", PROMETHEUS_UID,
                                                  'sum(scout_ingest_requests_total{outcome="accepted"})'))
    silvered = _series(observed.prometheus, Query("", "", "", PROMETHEUS_UID,
                                                  'sum(scout_stage_rows_total{stage="silver", outcome="inserted"})'))
    assert float(accepted[0]["value"][1]) == TRANSACTIONS
    assert float(silvered[0]["value"][1]) == TRANSACTIONS


@pytest.mark.parametrize("query", PROMQL_QUERIES, ids=lambda q: q.name)
def test_every_dashboard_query_evaluates(observed: Observed, query: Query) -> None:
    end = observed.prometheus.api("query", query="time()")["result"][1]
    observed.prometheus.api("query", query=promql(query))
    observed.prometheus.api("query_range", query=promql(query), start=str(float(end) - 300), end=str(end), step="5")


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_expression_evaluates(observed: Observed, rule: dict[str, Any]) -> None:
    end = observed.prometheus.api("query", query="time()")["result"][1]
    observed.prometheus.api("query", query=rule["expr"])
    observed.prometheus.api("query_range", query=rule["expr"], start=str(float(end) - 300), end=str(end), step="5")
