"""Two schedulers on one database refresh each view once per silver change; failed jobs are recorded
and retried; the retention job deletes only what it may."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from psycopg_pool import ConnectionPool

from jobs.gold import CORE_VIEWS, GOLD_VIEWS
from jobs.registry import JOBS, Job, JobFailed, run_job
from jobs.scheduler import build_scheduler
from scout.settings import Settings
from tests.conftest import eventually
from tests.factories import tx_dict
from tests.integration import gold_dataset
from tests.integration.test_silver_step import _drain_all, _seed

VIEWS = [v.name for v in GOLD_VIEWS]


@contextmanager
def _schedulers(dsn: str, names: list[str], jobs: dict[str, Job], **settings: Any) -> Iterator[None]:
    config = Settings(database_url=dsn, gold_refresh_interval_s=0.2, gold_analytics_interval_s=0.2,  # type: ignore[arg-type]
                      **settings)
    pools = [ConnectionPool(dsn, min_size=1, max_size=2, name=n, open=True,
                            kwargs={"application_name": n}) for n in names]
    schedulers = [build_scheduler(config, pool, BackgroundScheduler(timezone="UTC"), jobs=jobs) for pool in pools]
    for scheduler in schedulers:
        scheduler.start()
    try:
        yield
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
        for pool in pools:
            pool.close()


def _query(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _silver_version(dsn: str) -> int:
    return int(_query(dsn, "SELECT version FROM ops.watermarks WHERE name = 'silver'")[0][0])


def _refreshed(dsn: str, version: int) -> dict[str, int]:
    """view -> number of refreshes that recorded this silver version."""
    return dict(_query(dsn, "SELECT view_name, count(*) FROM ops.gold_refresh_log "
                            "WHERE status = 'refreshed' AND watermark = %s GROUP BY view_name", [version]))


def _passes_after(dsn: str, runner_suffix: str, after_id: int) -> int:
    """Completed passes of one scheduler since a log id: its rows for the last view in the list."""
    rows = _query(dsn, "SELECT count(*) FROM ops.gold_refresh_log WHERE view_name = %s AND id > %s "
                       "AND runner LIKE %s", [VIEWS[-1], after_id, f"%:{runner_suffix}"])
    return int(rows[0][0])


def _max_log_id(dsn: str) -> int:
    return int(_query(dsn, "SELECT coalesce(max(id), 0) FROM ops.gold_refresh_log")[0][0])


def _waiting_on_locks(dsn: str) -> set[str]:
    rows = _query(dsn, "SELECT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND application_name IN ('sched-a', 'sched-b')")
    return {r[0] for r in rows}


def test_two_schedulers_refresh_each_view_once_per_cycle(database: str) -> None:
    gold_dataset.seed(database)
    cycle_1 = _silver_version(database)
    jobs = {"gold-refresh": JOBS["gold-refresh"], "gold-analytics": JOBS["gold-analytics"]}
    with psycopg.connect(database) as blocker:
        # Hold silver so the first refreshes stall mid-way: both schedulers end up inside a refresh at once.
        blocker.execute("LOCK TABLE silver.transactions IN ACCESS EXCLUSIVE MODE")
        with _schedulers(database, ["sched-a", "sched-b"], jobs):
            eventually(lambda: _waiting_on_locks(database), until=lambda w: w == {"sched-a", "sched-b"},
                       timeout=30, what="both schedulers inside a refresh")
            blocker.commit()
            eventually(lambda: _refreshed(database, cycle_1), until=lambda r: set(r) == set(VIEWS),
                       timeout=60, what="every view refreshed in cycle 1")
            mark = _max_log_id(database)
            for runner in ("sched-a", "sched-b"):  # both keep running full passes afterwards
                eventually(lambda r=runner: _passes_after(database, r, mark), until=lambda n: n >= 3,
                           timeout=30, what=f"three more passes of {runner}")
            gold_dataset.seed(database, [("T11", "S4", "2025-03-28T12:00:00Z", [("SOAP", 5)], "100.00")])
            cycle_2 = _silver_version(database)
            eventually(lambda: _refreshed(database, cycle_2), until=lambda r: set(r) == set(VIEWS),
                       timeout=60, what="every view refreshed in cycle 2")
            mark = _max_log_id(database)
            for runner in ("sched-a", "sched-b"):
                eventually(lambda r=runner: _passes_after(database, r, mark), until=lambda n: n >= 3,
                           timeout=30, what=f"three more passes of {runner}")
    assert cycle_2 == cycle_1 + 1
    assert _refreshed(database, cycle_1) == dict.fromkeys(VIEWS, 1)
    assert _refreshed(database, cycle_2) == dict.fromkeys(VIEWS, 1)
    assert not _query(database, "SELECT * FROM ops.gold_refresh_log WHERE status = 'failed'")
    contended = _query(database, "SELECT count(*) FROM ops.gold_refresh_log "
                                 "WHERE reason = 'another refresh holds the lock'")[0][0]
    assert contended >= 1  # the lock, not luck, kept the second scheduler out
    runners = {r[0].rsplit(":", 1)[-1] for r in _query(
        database, "SELECT DISTINCT runner FROM ops.gold_refresh_log WHERE status = 'refreshed'")}
    assert runners == {"sched-a", "sched-b"}  # the work was shared
    assert _query(database, "SELECT orders, revenue FROM gold.dashboard_summary") == [(11, Decimal("945.00"))]


def _runs(dsn: str, job: str) -> list[tuple[str, str | None]]:
    return [(s, e) for s, e in _query(dsn, "SELECT status, error FROM ops.job_runs WHERE job_name = %s "
                                           "AND status <> 'running' ORDER BY id", [job])]


def test_a_failed_job_is_recorded_and_retried_before_its_next_interval(database: str) -> None:
    attempts: list[int] = []

    def flaky(pool: ConnectionPool, _: Settings) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise JobFailed("first attempt fails", {"attempt": 1})
        return {"attempt": len(attempts)}

    jobs = {"flaky": Job("flaky", "fails once", lambda s: 3600.0, flaky)}
    with _schedulers(database, ["sched-a"], jobs, job_retry_delay_s=0.2):
        runs = eventually(lambda: _runs(database, "flaky"), until=lambda r: len(r) >= 2, timeout=30,
                          what="a retry of the failed job")
    assert runs[:2] == [("failed", "JobFailed: first attempt fails"), ("succeeded", None)]
    details = _query(database, "SELECT details FROM ops.job_runs WHERE job_name = 'flaky' ORDER BY id")
    assert [d for (d,) in details][:2] == [{"attempt": 1}, {"attempt": 2}]


def test_a_failing_gold_refresh_is_reported_then_recovers(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(1)]))
    asyncio.run(_drain_all(database, 10))
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP INDEX gold.store_segments_key")  # REFRESH CONCURRENTLY needs a unique index
    jobs = {"gold-refresh": JOBS["gold-refresh"]}
    with _schedulers(database, ["sched-a"], jobs, job_retry_delay_s=0.2):
        eventually(lambda: _runs(database, "gold-refresh"), until=lambda r: any(s == "failed" for s, _ in r),
                   timeout=30, what="a failed gold-refresh run")
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("CREATE UNIQUE INDEX store_segments_key ON gold.store_segments (store_id)")
        eventually(lambda: _runs(database, "gold-refresh"), until=lambda r: r[-1][0] == "succeeded",
                   timeout=30, what="a successful gold-refresh run after the fix")
    (details,) = _query(database, "SELECT details FROM ops.job_runs WHERE status = 'failed' ORDER BY id LIMIT 1")[0]
    assert details["gold.store_segments"]["status"] == "failed"
    assert details["gold.sales_by_store_day"]["status"] == "refreshed"
    assert _query(database, "SELECT count(*) FROM gold.store_segments") == [(1,)]


def test_retention_deletes_old_processed_bronze_and_old_ops_logs_only(database: str) -> None:
    bodies = [tx_dict(n) for n in range(1, 6)]
    bodies.append(tx_dict(6, total="99.00"))  # line sum mismatch: quarantined, its bronze row must stay
    asyncio.run(_seed(database, bodies))
    asyncio.run(_drain_all(database, 100))
    asyncio.run(_seed(database, [tx_dict(7)]))  # landed, not yet processed
    settings = Settings(database_url=database, bronze_retention_days=30, ops_log_retention_days=14,  # type: ignore[arg-type]
                        retention_batch_size=1)
    with ConnectionPool(database, min_size=1, max_size=2, open=True) as pool:
        run_job("gold-refresh", pool, settings)
        run_job("gold-refresh", pool, settings)
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("UPDATE bronze.transactions SET received_at = now() - interval '40 days' "
                         "WHERE transaction_id IN ('TXN-000001', 'TXN-000002', 'TXN-000006', 'TXN-000007')")
            conn.execute("UPDATE bronze.transactions SET received_at = now() - interval '20 days' "
                         "WHERE transaction_id = 'TXN-000003'")
            first_run = conn.execute("SELECT min(id) FROM ops.job_runs").fetchone()
            conn.execute("UPDATE ops.job_runs SET started_at = now() - interval '15 days' WHERE id = %s",
                         [first_run[0] if first_run else None])
            conn.execute("UPDATE ops.gold_refresh_log SET started_at = now() - interval '15 days' "
                         "WHERE status = 'refreshed'")
        details = run_job("retention", pool, settings)
    views = len(CORE_VIEWS)  # the gold-refresh job's views
    assert details["deleted"] == {"bronze": 2, "gold_refresh_log": views, "job_runs": 1}
    left = {r[0] for r in _query(database, "SELECT transaction_id FROM bronze.transactions")}
    assert left == {"TXN-000003", "TXN-000004", "TXN-000005", "TXN-000006", "TXN-000007"}
    assert _query(database, "SELECT count(*) FROM silver.transactions") == [(5,)]  # silver keeps its rows
    assert _query(database, "SELECT count(*), min(status) FROM ops.gold_refresh_log") == [(views, "skipped")]
    assert _query(database, "SELECT job_name FROM ops.job_runs ORDER BY id") == [
        ("gold-refresh",), ("retention",)]


def test_jobs_run_with_the_pipeline_role_only(database: str) -> None:
    """The scheduler needs no more than scout_pipeline: refresh every view (platinum too) and purge."""
    gold_dataset.seed(database)
    settings = Settings(database_url=database)  # type: ignore[arg-type]
    with ConnectionPool(database, min_size=1, max_size=2, open=True,
                        kwargs={"options": "-c role=scout_pipeline"}) as pool:
        with pool.connection() as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("scout_pipeline",)
        refreshed = run_job("gold-refresh", pool, settings)
        retained = run_job("retention", pool, settings)
    assert {v["status"] for v in refreshed.values()} == {"refreshed"}
    assert retained["deleted"] == {"bronze": 0, "gold_refresh_log": 0, "job_runs": 0}
