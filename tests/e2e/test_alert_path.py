"""The page an on-call engineer receives, end to end: a real Prometheus scrapes `scout api`, `scout worker` and
`scout scheduler` (real Kafka and PostgreSQL) and evaluates observability/prometheus/rules; a real Alertmanager
with observability/alertmanager/alertmanager.yml routes its alerts to a webhook receiver run by the test.

Under traffic the stream worker is stopped: its own lag and stall gauges go with it, so what fires is
ScoutProcessDown for the worker's job (after the rule's 1 minute), and it reaches the receiver with its runbook
link; the worker is started again, the resolved notification arrives and every transaction accepted meanwhile is
in silver. A quality alert takes the same road: a transaction whose lines do not add up is quarantined, the
scheduler's quality checks open a critical alert, ScoutQualityCriticalAlert reaches the receiver.

A landing stuck in PostgreSQL takes it too: under traffic a connection holds the offset rows (ops.stream_offsets)
FOR UPDATE, bronze's next landing waits on them while records keep arriving, the worker's stall alarm rises and
ScoutBronzeStalled (after the rule's 2 minutes) reaches the receiver with its runbook link, whose query names the
session holding the rows; the lock is let go, the resolved notification arrives and every accepted transaction is
in silver exactly once."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from tests.e2e.alertmanager import alertmanager_server
from tests.e2e.prometheus import prometheus_server
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token
from tests.receiver import Receiver


@dataclass
class Traffic:
    """Transactions posted one after another from a thread until stopped; the 202s are counted."""

    url: str
    token: str
    accepted: int = 0
    ids: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        gen = Generator(seed=23)
        with httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {self.token}"}) as c:
            n = 0
            while not self.stop.wait(0.1):
                body = gen.transaction(n)
                response = c.post("/v1/transactions", json=body)
                assert response.status_code == 202, response.text
                self.ids.append(body["transaction_id"])
                self.accepted += 1
                n += 1


def _alerts(receiver: Receiver, alertname: str, status: str, **labels: str) -> list[dict[str, Any]]:
    """The alerts of that name and status in every notification received so far."""
    return [alert for body in list(receiver.bodies) for alert in body["alerts"]
            if alert["labels"]["alertname"] == alertname and alert["status"] == status
            and all(alert["labels"].get(k) == v for k, v in labels.items())]


def _count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def pipeline(postgres, kafka_bootstrap: str, tmp_path: Path  # type: ignore[no-untyped-def]
             ) -> Iterator[tuple[Children, dict[str, str], str, str]]:
    """The processes, their scrape targets (job -> host:port), the database and an ingest token."""
    dsn = postgres.fresh_database()
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(database_url=dsn, kafka_bootstrap=kafka_bootstrap,  # type: ignore[arg-type]
                        topic=f"pos.transactions.v1.{suffix}", dead_letter_topic=f"pos.transactions.dlq.v1.{suffix}",
                        stream_app_id=f"scout-alerts-{suffix}", data_dir=tmp_path / "scout")
    ensure_topics(settings)
    ports = {"api": free_port(), "worker": free_port(), "scheduler": free_port()}
    env = child_env(
        database_url=dsn, kafka_bootstrap=kafka_bootstrap, topic=settings.topic,
        dead_letter_topic=settings.dead_letter_topic, stream_app_id=settings.stream_app_id,
        api_port=str(ports["api"]), worker_web_port=str(free_port()), data_dir=str(settings.data_dir),
        worker_metrics_port=str(ports["worker"]), scheduler_metrics_port=str(ports["scheduler"]),
        gold_refresh_interval_s="1", quality_interval_s="2", consumer_lag_interval_s="1",
        silver_idle_interval_s="0.1", bronze_batch_within_s="0.2",
        consumer_stall_timeout_s="2",  # the stall alarm's own wait; the rule's `for:` is the deployment's
    )
    _, token = cli_token(env, "--name", "alert path", "--all-stores", "--rate-limit", "100000")
    children = Children(env, settings.data_dir / "logs")
    for name in ("api", "worker", "scheduler"):
        children.start(name, name)
    targets = {f"scout-{name}": f"127.0.0.1:{port}" for name, port in ports.items()}
    try:
        wait_api_ready(f"http://127.0.0.1:{ports['api']}")
        yield children, targets, dsn, token
    finally:
        stop_and_show_logs(children)


def test_a_stopped_worker_pages_on_call_and_its_return_resolves_it(pipeline, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    children, targets, dsn, token = pipeline
    url = f"http://{targets['scout-api']}"
    with Receiver().running() as receiver, \
            alertmanager_server(receiver.url, tmp_path / "alertmanager") as alertmanager, \
            prometheus_server(targets, tmp_path / "prometheus", alertmanager=alertmanager) as prometheus:
        eventually(lambda: {t["labels"]["job"]: t["health"] for t in prometheus.api("targets")["activeTargets"]},
                   until=lambda h: set(h.values()) == {"up"} and len(h) == 4, timeout=60, what="every target up")
        traffic = Traffic(url, token)
        poster = threading.Thread(target=traffic.run, daemon=True)
        poster.start()
        try:
            eventually(lambda: _count(dsn, "SELECT count(*) FROM silver.transactions"), until=lambda n: n >= 10,
                       timeout=120, what="traffic reaching silver")
            worker = next(c for c in children.running if c.name == "worker")
            os.killpg(worker.proc.pid, signal.SIGTERM)
            assert worker.proc.wait(60) == 0

            down = eventually(lambda: _alerts(receiver, "ScoutProcessDown", "firing", job="scout-worker"),
                              until=bool, timeout=240, what="ScoutProcessDown for the worker at the receiver")
            assert down[0]["annotations"]["runbook_url"] == "docs/RUNBOOK.md#process-down"
            assert down[0]["labels"]["severity"] == "critical"
            assert not _alerts(receiver, "ScoutProcessDown", "firing", job="scout-api")

            children.start("worker-again", "worker")
            resolved = eventually(lambda: _alerts(receiver, "ScoutProcessDown", "resolved", job="scout-worker"),
                                  until=bool, timeout=180, what="the resolved notification")
            assert resolved[0]["annotations"]["runbook_url"] == "docs/RUNBOOK.md#process-down"
        finally:
            traffic.stop.set()
            poster.join(60)
        eventually(lambda: _count(dsn, "SELECT count(*) FROM silver.transactions"),
                   until=lambda n: n == traffic.accepted, timeout=180, what="every accepted transaction in silver")

        bad = {**Generator(seed=29).transaction(0), "total_amount": "9999.99"}  # its lines do not add up to it
        response = httpx.post(f"{url}/v1/transactions", json=bad, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 202, response.text
        quality = eventually(
            lambda: _alerts(receiver, "ScoutQualityCriticalAlert", "firing", rule="line_sum_mismatch"),
            until=bool, timeout=180, what="the critical quality alert at the receiver")
        assert quality[0]["annotations"]["runbook_url"] == "docs/RUNBOOK.md#quality-alerts"


def _runbook_query(section: str) -> str:
    """The first SQL block of that docs/RUNBOOK.md section."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split("```sql\n", 1)[1].split("```", 1)[0]


def _holders(dsn: str, query: str) -> set[int]:
    with psycopg.connect(dsn) as conn:
        return {int(row[1]) for row in conn.execute(query).fetchall()}


def _landed_partitions(dsn: str) -> int:
    return _count(dsn, "SELECT count(*) FROM ops.stream_offsets")


def test_a_landing_stuck_in_postgresql_pages_on_call_and_its_release_resolves_it(  # type: ignore[no-untyped-def]
        pipeline, tmp_path: Path) -> None:
    _, targets, dsn, token = pipeline
    url = f"http://{targets['scout-api']}"
    with Receiver().running() as receiver, \
            alertmanager_server(receiver.url, tmp_path / "alertmanager") as alertmanager, \
            prometheus_server(targets, tmp_path / "prometheus", alertmanager=alertmanager) as prometheus:
        eventually(lambda: {t["labels"]["job"]: t["health"] for t in prometheus.api("targets")["activeTargets"]},
                   until=lambda h: set(h.values()) == {"up"} and len(h) == 4, timeout=60, what="every target up")
        traffic = Traffic(url, token)
        poster = threading.Thread(target=traffic.run, daemon=True)
        poster.start()
        try:
            eventually(lambda: _landed_partitions(dsn), until=lambda n: n == 3, timeout=120,
                       what="every partition landed once (its offset row exists)")
            eventually(lambda: _count(dsn, "SELECT count(*) FROM silver.transactions"), until=lambda n: n >= 10,
                       timeout=120, what="traffic reaching silver")
            assert not _alerts(receiver, "ScoutBronzeStalled", "firing")
            with psycopg.connect(dsn) as lock:  # bronze's next landing waits on these rows while records arrive
                lock.execute("SELECT 1 FROM ops.stream_offsets FOR UPDATE")
                holder = lock.info.backend_pid
                eventually(lambda: _holders(dsn, _runbook_query("bronze-stalled")), until=lambda h: holder in h,
                           timeout=60, what="the runbook's query naming the session that holds the offset rows")
                stalled = eventually(lambda: _alerts(receiver, "ScoutBronzeStalled", "firing"), until=bool,
                                     timeout=300, what="ScoutBronzeStalled at the receiver")
                assert stalled[0]["annotations"]["runbook_url"] == "docs/RUNBOOK.md#bronze-stalled"
                assert stalled[0]["labels"]["severity"] == "critical"
                assert not _alerts(receiver, "ScoutBronzeStalled", "resolved")
            resolved = eventually(lambda: _alerts(receiver, "ScoutBronzeStalled", "resolved"), until=bool,
                                  timeout=180, what="the resolved notification once the lock is let go")
            assert resolved[0]["annotations"]["runbook_url"] == "docs/RUNBOOK.md#bronze-stalled"
        finally:
            traffic.stop.set()
            poster.join(60)
        assert not poster.is_alive()
        silvered = "SELECT count(*) FROM silver.transactions"
        eventually(lambda: _count(dsn, silvered), until=lambda n: n >= traffic.accepted, timeout=180,
                   what="every accepted transaction in silver")
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT transaction_id, count(*) FROM silver.transactions GROUP BY transaction_id"
                                ).fetchall()
        assert {tid: int(n) for tid, n in rows} == dict.fromkeys(traffic.ids, 1)
