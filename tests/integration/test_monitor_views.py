"""The monitoring views (schema ``monitor``) on a known dataset, read as scout_reader.

The ten transactions of tests/integration/gold_dataset.py go through the real bronze -> silver code, one
more is quarantined, then their timestamps are pinned (M0 is a minute two hours ago, M1 and M2 the next two)
so every figure is worked out by hand:

    T01..T05  received M0+10s, landed M0+20s, processed received + 1, 2, 3, 4, 5 s
    T06..T09  received M1+0s,  landed M1+30s, processed received + 10, 20, 30, 40 s
    T10       received, landed and processed eight days ago: outside the views' 7-day window
    Q01       received M1+5s,  landed M1+30s, quarantined at M2
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from jobs.gold import GOLD_VIEWS, refresh_gold
from tests.integration import gold_dataset

# Quarantined: the items sum to 25.00, the total says 99.00 (line_sum_mismatch).
BROKEN = ("Q01", "S9", "2025-03-05T10:00:00Z", [("COLA", 1)], "99.00")
M0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def _at(minute: int, second: float = 0) -> datetime:
    return M0 + timedelta(minutes=minute, seconds=second)


@pytest.fixture
def monitored(database: str) -> Iterator[str]:
    gold_dataset.seed(database, [*gold_dataset.ROWS, BROKEN])
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM silver.quarantine").fetchone() == (1,)
        for n in range(1, 11):
            first = n <= 5
            received = _at(0, 10) if first else _at(1)
            landed = _at(0, 20) if first else _at(1, 30)
            latency = n if first else (n - 5) * 10
            if n == 10:
                received = landed = datetime.now(UTC) - timedelta(days=8)
            _pin(conn, f"T{n:02d}", received, landed, latency)
        conn.execute("UPDATE bronze.transactions SET received_at = %s, landed_at = %s WHERE transaction_id = 'Q01'",
                     [_at(1, 5), _at(1, 30)])
        conn.execute("UPDATE silver.quarantine SET created_at = %s", [_at(2)])
        # Job runs of known durations (seconds): gold-refresh 1, 2, 3 and a failed 10; one still running.
        for job, start, seconds, status in [
            ("gold-refresh", 60, 1, "succeeded"), ("gold-refresh", 61, 2, "succeeded"),
            ("gold-refresh", 62, 3, "succeeded"), ("gold-refresh", 63, 10, "failed"),
            ("retention", 60, 4, "succeeded"), ("retention", 65, None, "running"),
        ]:
            conn.execute(
                "INSERT INTO ops.job_runs (job_name, started_at, finished_at, status) "
                "VALUES (%s, %s, %s + make_interval(secs => %s), %s)",
                [job, _at(start), _at(start), seconds, status])
    yield database


def _pin(conn: psycopg.Connection[Any], txn: str, received: datetime, landed: datetime, latency: float) -> None:
    conn.execute("UPDATE bronze.transactions SET received_at = %s, landed_at = %s WHERE transaction_id = %s",
                 [received, landed, txn])
    conn.execute("UPDATE silver.transactions SET received_at = %s, processed_at = %s + make_interval(secs => %s) "
                 "WHERE transaction_id = %s", [received, received, latency, txn])


def _as_reader(dsn: str, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET ROLE scout_reader")
        return conn.execute(query).fetchall()


def test_pipeline_throughput_per_minute(monitored: str) -> None:
    rows = _as_reader(monitored, "SELECT * FROM monitor.v_pipeline_throughput ORDER BY minute")
    assert [(r["minute"], r["received"], r["landed"], r["silvered"], r["quarantined"]) for r in rows] == [
        (_at(0), 5, 5, 5, 0),
        (_at(1), 5, 5, 4, 0),
        (_at(2), 0, 0, 0, 1),
    ]


def test_pipeline_throughput_minutes_are_utc_whatever_the_session_time_zone(monitored: str) -> None:
    with psycopg.connect(monitored) as conn:
        conn.execute("SET ROLE scout_reader")
        conn.execute("SET TIME ZONE 'Asia/Kolkata'")  # +05:30
        minutes = [r[0] for r in conn.execute("SELECT minute FROM monitor.v_pipeline_throughput ORDER BY 1")]
    assert [m.astimezone(UTC) for m in minutes] == [_at(0), _at(1), _at(2)]


def test_ingest_latency_percentiles_per_minute(monitored: str) -> None:
    rows = _as_reader(monitored, "SELECT * FROM monitor.v_ingest_latency ORDER BY minute")
    # percentile_cont interpolates: p95 of 1..5 s sits at rank 3.8 -> 4.8 s; of 10..40 s at 2.85 -> 38.5 s.
    figures = [(r["minute"], r["transactions"], r["p50_seconds"], r["p95_seconds"], r["p99_seconds"],
                r["max_seconds"]) for r in rows]
    assert figures == [
        (_at(0), 5, pytest.approx(3.0), pytest.approx(4.8), pytest.approx(4.96), pytest.approx(5.0)),
        (_at(1), 4, pytest.approx(25.0), pytest.approx(38.5), pytest.approx(39.7), pytest.approx(40.0)),
    ]


def test_gold_freshness_per_view(monitored: str) -> None:
    with ConnectionPool(monitored, min_size=1, max_size=2, open=True) as pool:
        assert {r.status for r in refresh_gold(pool)} == {"refreshed"}
        assert {r.status for r in refresh_gold(pool)} == {"skipped"}
    with psycopg.connect(monitored) as conn:  # the last refresh of one view was ten minutes ago
        conn.execute("UPDATE ops.gold_refresh_state SET last_refresh_at = now() - interval '10 minutes' "
                     "WHERE view_name = 'gold.sales_by_store_day'")
    rows = {r["view_name"]: r for r in _as_reader(monitored, "SELECT * FROM monitor.v_gold_freshness")}
    assert set(rows) == {v.name for v in GOLD_VIEWS}
    by_store_day = rows["gold.sales_by_store_day"]
    # (store, day) pairs of the dataset: S1 x4, S2 x3, S3 x1 (two orders on one day), S4 x1.
    assert by_store_day["rows"] == 9
    assert 600 <= by_store_day["age_seconds"] < 3600
    assert by_store_day["current"] is True
    assert by_store_day["last_attempt_status"] == "skipped"
    assert by_store_day["last_skip_reason"] == "no new silver data"
    assert by_store_day["last_failure_reason"] is None
    assert rows["gold.dashboard_summary"]["rows"] == 1
    assert rows["gold.dashboard_summary"]["last_skip_reason"] == "no input view refreshed since"
    assert all(0 <= r["age_seconds"] < 600 for name, r in rows.items() if name != "gold.sales_by_store_day")


def test_etl_performance_per_job(monitored: str) -> None:
    rows = {r["job_name"]: r for r in _as_reader(monitored, "SELECT * FROM monitor.v_etl_performance")}
    gold = rows["gold-refresh"]
    assert (gold["runs"], gold["succeeded"], gold["failures"], gold["running"]) == (4, 3, 1, 0)
    # Durations 1, 2, 3, 10 s: p50 at rank 1.5 -> 2.5 s, p95 at rank 2.85 -> 3 + 0.85 * 7 = 8.95 s.
    assert gold["p50_seconds"] == pytest.approx(2.5)
    assert gold["p95_seconds"] == pytest.approx(8.95)
    assert gold["last_started_at"] == _at(63)
    assert gold["last_failed_at"] == _at(63)
    retention = rows["retention"]
    assert (retention["runs"], retention["succeeded"], retention["failures"], retention["running"]) == (2, 1, 0, 1)
    assert retention["p50_seconds"] == pytest.approx(4.0)  # the running one has no duration yet
    assert retention["last_failed_at"] is None


def test_reader_reads_the_views_but_not_what_they_are_built_on(monitored: str) -> None:
    with psycopg.connect(monitored) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'monitor' ORDER BY 1")]
    assert names == ["v_etl_performance", "v_gold_freshness", "v_ingest_latency", "v_job_last_runs",
                     "v_open_alerts", "v_pipeline_throughput", "v_stream_offsets"]
    counts = {name: _as_reader(monitored, f"SELECT count(*) AS n FROM monitor.{name}")[0]["n"] for name in names}
    # No gold refresh ran in this test: no gold view to report on yet; no alert, no landed offset.
    assert counts == {"v_etl_performance": 2, "v_gold_freshness": 0, "v_ingest_latency": 2, "v_job_last_runs": 2,
                      "v_open_alerts": 0, "v_pipeline_throughput": 3, "v_stream_offsets": 0}
    window = _as_reader(monitored, f"SELECT count(*) AS n FROM monitor.pipeline_throughput('{_at(1).isoformat()}')")
    assert window == [{"n": 2}]  # the functions behind the views, from a given minute on
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as_reader(monitored, "SELECT count(*) FROM ops.job_runs")
