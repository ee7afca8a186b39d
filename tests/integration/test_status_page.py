"""The status page's figures (GET /v1/status) on a real database and broker: the same numbers as SQL over the
tables themselves, lag against the broker's real end offsets, alerts with their runbook section, read scope.

The ten transactions of tests/integration/gold_dataset.py go through the real bronze -> silver code, one more
is quarantined; then their times are pinned to minutes of the page's window (R0 is three minutes before the test runs):

    T01..T05  received R0+10s, landed R0+20s, processed received + 1..5 s
    T06..T09  received R1,     landed R1+30s, processed received + 10..40 s
    T10       received and processed 20 minutes ago: outside the 15-minute window
    Q01       received R1+5s, quarantined at R2
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from ingest_api.app import create_app
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.factories import bearer
from tests.integration import gold_dataset
from tests.integration.test_monitor_views import BROKEN, _pin

ANCHOR = re.compile(r'<h2 id="([a-z0-9-]+)"')


def _at(r0: datetime, minute: int, second: float = 0) -> datetime:
    return r0 + timedelta(minutes=minute, seconds=second)


@pytest.fixture
def r0() -> datetime:
    """Three minutes before the test runs (not before the module was imported: the page's window is 15 minutes)."""
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)


@pytest.fixture
def seeded(settings: Settings, r0: datetime) -> Iterator[Settings]:
    dsn = settings.database_dsn()
    gold_dataset.seed(dsn, [*gold_dataset.ROWS, BROKEN])
    with psycopg.connect(dsn) as conn:
        for n in range(1, 11):
            first = n <= 5
            received, landed = (_at(r0, 0, 10), _at(r0, 0, 20)) if first else (_at(r0, 1), _at(r0, 1, 30))
            if n == 10:
                received = landed = datetime.now(UTC) - timedelta(minutes=20)
            _pin(conn, f"T{n:02d}", received, landed, n if first else (n - 5) * 10)
        conn.execute("UPDATE bronze.transactions SET received_at = %s, landed_at = %s WHERE transaction_id = 'Q01'",
                     [_at(r0, 1, 5), _at(r0, 1, 30)])
        conn.execute("UPDATE silver.quarantine SET created_at = %s", [_at(r0, 2)])
        conn.execute("INSERT INTO ops.alerts (rule, subject, severity, message) VALUES "
                     "('over_threshold', '', 'warning', 'large totals'), "
                     "('negative_amount', 'STORE-1', 'critical', 'negative totals'), "
                     "('link_coverage', '', 'critical', 'was low')")
        conn.execute("UPDATE ops.alerts SET resolved_at = now() WHERE rule = 'link_coverage'")
        for job, ago_s, seconds, status in [("gold-refresh", 30, 1, "succeeded"), ("gold-refresh", 10, 2, "failed"),
                                            ("retention", 7200, 4, "succeeded")]:
            conn.execute("INSERT INTO ops.job_runs (job_name, started_at, finished_at, status, error) "
                         "VALUES (%s, now() - make_interval(secs => %s), now() - make_interval(secs => %s - %s), "
                         "%s, %s)", [job, ago_s, ago_s, seconds, status, "boom" if status == "failed" else None])
        # Bronze landed up to offset 1 of partition 0 and nothing of partition 1; partition 2 never claimed.
        conn.execute("INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset, epoch, owner) "
                     "VALUES (%s, 0, 1, 3, 'worker-a'), (%s, 1, 0, 1, NULL)", [settings.topic, settings.topic])
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    for partition, records in ((0, 4), (1, 2), (2, 1)):
        for _ in range(records):
            producer.send(settings.topic, b"{}", partition=partition)
    producer.flush()
    producer.close()
    yield settings


def _sql(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_status_figures_are_what_sql_shows(seeded: Settings, r0: datetime) -> None:
    dsn = seeded.database_dsn()
    with TestClient(create_app(seeded), headers=bearer(dsn, scopes=("read",))) as client:
        response = client.get("/v1/status")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    since = datetime.fromisoformat(body["since"])
    assert since == datetime.fromisoformat(body["as_of"]).replace(second=0, microsecond=0) - timedelta(minutes=14)

    per_minute: dict[datetime, dict[str, int]] = {}
    for layer, query in {
        "received": "SELECT date_trunc('minute', received_at, 'UTC'), count(*) FROM bronze.transactions "
                    "WHERE received_at >= %(since)s GROUP BY 1",
        "landed": "SELECT date_trunc('minute', landed_at, 'UTC'), count(*) FROM bronze.transactions "
                  "WHERE received_at >= %(since)s GROUP BY 1",
        "silvered": "SELECT date_trunc('minute', processed_at, 'UTC'), count(*) FROM silver.transactions "
                    "WHERE processed_at >= %(since)s GROUP BY 1",
        "quarantined": "SELECT date_trunc('minute', created_at, 'UTC'), count(*) FROM silver.quarantine "
                       "WHERE created_at >= %(since)s GROUP BY 1",
    }.items():
        for minute, n in _sql(dsn, query, {"since": since}):
            per_minute.setdefault(minute, dict.fromkeys(("received", "landed", "silvered", "quarantined"), 0))
            per_minute[minute][layer] = n
    shown = {datetime.fromisoformat(r["minute"]): {k: r[k] for k in ("received", "landed", "silvered", "quarantined")}
             for r in body["throughput"]}
    assert shown == per_minute
    assert shown[_at(r0, 0)] == {"received": 5, "landed": 5, "silvered": 5, "quarantined": 0}
    assert shown[_at(r0, 1)] == {"received": 5, "landed": 5, "silvered": 4, "quarantined": 0}
    assert shown[_at(r0, 2)] == {"received": 0, "landed": 0, "silvered": 0, "quarantined": 1}

    latency = {datetime.fromisoformat(r["minute"]): r for r in body["latency"]}
    assert [(m, r["transactions"], r["p50_seconds"], r["max_seconds"]) for m, r in sorted(latency.items())] == [
        (_at(r0, 0), 5, pytest.approx(3.0), pytest.approx(5.0)),
        (_at(r0, 1), 4, pytest.approx(25.0), pytest.approx(40.0))]

    assert [(p["partition"], p["landed_offset"], p["end_offset"], p["lag"], p["epoch"], p["owner"])
            for p in body["partitions"]] == [(0, 1, 4, 3, 3, "worker-a"), (1, 0, 2, 2, 1, None),
                                             (2, 0, 1, 1, None, None)]
    assert body["broker_reachable"] is True

    assert body["alerts_open"] == 2
    assert [(a["rule"], a["severity"], a["subject"], a["runbook"]) for a in body["alerts"]] == [
        ("negative_amount", "critical", "STORE-1", "docs/RUNBOOK.md#quality-negative-amount"),
        ("over_threshold", "warning", "", "docs/RUNBOOK.md#quality-over-threshold")]

    jobs = {j["job_name"]: j for j in body["jobs"]}
    assert (jobs["gold-refresh"]["status"], jobs["gold-refresh"]["error"]) == ("failed", "boom")
    assert jobs["gold-refresh"]["duration_seconds"] == pytest.approx(2.0)
    assert (jobs["gold-refresh"]["runs_last_hour"], jobs["gold-refresh"]["failures_last_hour"]) == (2, 1)
    assert (jobs["retention"]["status"], jobs["retention"]["runs_last_hour"]) == ("succeeded", 0)

    gold = {g["view_name"]: g for g in body["gold"]}
    assert set(gold) == {name for (name,) in _sql(dsn, "SELECT view_name FROM ops.gold_refresh_state")}


def test_status_figures_need_a_read_token_and_the_page_does_not(settings: Settings) -> None:
    dsn = settings.database_dsn()
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/status").status_code == 401
        refused = client.get("/v1/status", headers=bearer(dsn, scopes=("ingest",)))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
        page = client.get("/status")
        script = client.get("/status/assets/status.js")
        missing = client.get("/status/assets/other.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http://www.w3.org", "")  # nothing from elsewhere
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert missing.status_code == 404


def test_the_runbook_page_has_every_section_an_alert_links_to(settings: Settings) -> None:
    from quality.rules import RULES  # the rules with a quality alert each

    with TestClient(create_app(settings)) as client:
        page = client.get("/status/runbook")
    assert page.status_code == 200
    anchors = set(ANCHOR.findall(page.text))
    assert {f"quality-{rule.name.replace('_', '-')}" for rule in RULES} <= anchors
    assert {"consumer-lag", "bronze-stalled", "quality-alerts"} <= anchors
