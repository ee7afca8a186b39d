"""Status page benchmark: GET /v1/status from a running `scout api` over a database the size of a busy week.

Silver holds 1,000,000 line items (333,333 transactions, the gold benchmark's synthetic ones) received and
processed over the last 7 days, each with its bronze row; ops holds 14 days of job runs and gold refresh log
(one row per view every 10 s, what the scheduler writes), a few open alerts and three landed offsets. The
API answers with a read-scope token, as the page asks; the time is the client's, request to last byte. The raw
limit of the same run is the page's statement alone, as scout_reader on one connection.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cli.bench.gold import _grow_to
from cli.processes import Children, child_env
from cli.services import free_port, wait_until
from ingest_api.status import MAX_ALERTS, WINDOW_MINUTES
from ingest_api.tokens import create_token
from scout.db import q
from scout.kafka import ensure_topics
from scout.settings import Settings

WEEK_S = 7 * 86_400
# Spread silver over the last 7 days (each transaction 1-3 s after its receipt) and give it its bronze rows.
_SPREAD = f"""
UPDATE silver.transactions
SET received_at = now() - make_interval(secs => (txn_id * 7919) %% {WEEK_S}),
    processed_at = now() - make_interval(secs => (txn_id * 7919) %% {WEEK_S}) + make_interval(secs => 1 + txn_id %% 3);
INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at, landed_at,
                                 kafka_topic, kafka_partition, kafka_offset)
SELECT event_hash, 'simulator', store_id, transaction_id, '{{}}'::jsonb, received_at, received_at + interval '0.3 s',
       %(topic)s, txn_id %% 3, txn_id / 3
FROM silver.transactions;
DELETE FROM bronze.pending;
INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset)
SELECT %(topic)s, p, 111111 FROM generate_series(0, 2) p;
"""
_OPS = """
INSERT INTO ops.gold_refresh_log (view_name, started_at, finished_at, status, reason, duration_ms)
SELECT 'gold.view_' || v, now() - make_interval(secs => s * 10), now() - make_interval(secs => s * 10 - 0.01),
       CASE WHEN s % 6 = 0 THEN 'refreshed' WHEN s % 997 = 0 THEN 'failed' ELSE 'skipped' END,
       CASE WHEN s % 6 = 0 THEN NULL ELSE 'no new silver data' END, 10
FROM generate_series(1, 9) v, generate_series(1, 120960) s;
INSERT INTO ops.gold_refresh_state (view_name, watermark, last_refresh_at, rows, duration_ms)
SELECT 'gold.view_' || v, 1, now(), 1000, 10 FROM generate_series(1, 9) v;
INSERT INTO ops.job_runs (job_name, started_at, finished_at, status)
SELECT job, now() - make_interval(secs => s * every_s), now() - make_interval(secs => s * every_s - 0.05), 'succeeded'
FROM (VALUES ('gold-refresh', 10), ('gold-analytics', 20), ('quality-checks', 60), ('product-relink', 300),
             ('retention', 3600)) j(job, every_s),
     generate_series(1, 120960) s
WHERE s * every_s <= 14 * 86400;
INSERT INTO ops.alerts (rule, subject, severity, message)
SELECT 'rule_' || n, 'subject', CASE WHEN n % 2 = 0 THEN 'critical' ELSE 'warning' END, 'benchmark alert ' || n
FROM generate_series(1, 5) n;
VACUUM ANALYZE;
"""


def _fill(dsn: str, topic: str, line_items: int) -> dict[str, int]:
    have = _grow_to(dsn, line_items)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in filter(str.strip, _SPREAD.split(";")):  # statements with parameters go one by one
            conn.execute(statement.encode(), {"topic": topic})
        for statement in filter(str.strip, _OPS.split(";")):  # VACUUM outside a transaction
            conn.execute(statement.encode())
        counts = conn.execute("SELECT (SELECT count(*) FROM bronze.transactions), (SELECT count(*) FROM "
                              "ops.gold_refresh_log), (SELECT count(*) FROM ops.job_runs)").fetchone()
    assert counts is not None
    return {"silver_line_items": have, "bronze_rows": counts[0], "gold_refresh_log_rows": counts[1],
            "job_runs_rows": counts[2]}


def bench_status(bootstrap: str, dsn: str, work_dir: Path, *, line_items: int = 1_000_000, requests: int = 200,
                 say: Callable[[str], None]) -> dict[str, Any]:
    settings = Settings(database_url=dsn, kafka_bootstrap=bootstrap)  # type: ignore[arg-type]
    ensure_topics(settings)
    say(f"filling silver to {line_items:,} line items over 7 days, 14 days of ops logs ...")
    sizes = _fill(dsn, settings.topic, line_items)
    token = create_token(dsn, name="bench status", scopes=["read"], store_ids=None, rate_limit_per_s=100_000).secret
    port = free_port()
    children = Children(child_env(database_url=dsn, kafka_bootstrap=bootstrap, api_port=str(port),
                                  data_dir=str(work_dir / "scout"), kafka_idempotence="false"), work_dir / "logs")
    children.start("api", "api")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout=60, what="the API")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            for _ in range(10):  # connections, the broker reader, PostgreSQL's caches
                client.get("/v1/status").raise_for_status()
            times_ms = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get("/v1/status")
                times_ms.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            body = response.json()
    finally:
        children.stop_all()
    times_ms.sort()
    sql_ms = _statement_alone(dsn, settings.topic, requests)
    say(f"GET /v1/status: p50 {statistics.median(times_ms):.1f} ms, p95 {times_ms[int(0.95 * len(times_ms))]:.1f} ms, "
        f"max {times_ms[-1]:.1f} ms over {requests} requests")
    return {**sizes, "requests": requests, "load_average_1m": os.getloadavg()[0],
            "sql_alone_p50_ms": statistics.median(sql_ms), "p50_ms": statistics.median(times_ms),
            "p95_ms": times_ms[int(0.95 * len(times_ms))], "max_ms": times_ms[-1], "body_bytes": len(response.content),
            "minutes_shown": len(body["throughput"]), "broker_reachable": body["broker_reachable"]}


def _statement_alone(dsn: str, topic: str, requests: int) -> list[float]:
    """The raw limit of the same run: the page's statement as scout_reader on one connection, no HTTP, no API."""
    times_ms = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE scout_reader")
        for _ in range(requests):
            started = time.perf_counter()
            conn.execute(q("status_snapshot"), {"minutes": WINDOW_MINUTES, "topic": topic, "alerts": MAX_ALERTS})
            times_ms.append((time.perf_counter() - started) * 1000)
    return times_ms


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
