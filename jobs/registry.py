"""Scout's scheduled jobs by name, each run recorded in ops.job_runs.

Example::

    run_job("gold-refresh", pool, settings)     # what `scout jobs run gold-refresh` does
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from jobs.gold import ANALYTICAL_VIEWS, CORE_VIEWS, GoldView, refresh_gold
from jobs.partitions import ensure_partitions
from jobs.products import relink
from jobs.retention import drop_days, drop_legacy, purge
from observability.metrics import JOB_RUNS
from quality.runner import quality_job
from scout.db import q
from scout.errors import ScoutError
from scout.settings import Settings

log = logging.getLogger(__name__)


class JobFailed(ScoutError):
    """A job finished with failures; the run is recorded as failed (with ``details``) and reported."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    interval_s: Callable[[Settings], float]
    run: Callable[[ConnectionPool, Settings], dict[str, Any]]


def _gold_refresh(pool: ConnectionPool, views: tuple[GoldView, ...]) -> dict[str, Any]:
    results = refresh_gold(pool, views=views)
    details = {r.view: {"status": r.status, "reason": r.reason, "rows": r.rows, "ms": r.duration_ms}
               for r in results}
    failed = [r.view for r in results if r.status == "failed"]
    if failed:
        raise JobFailed(f"gold refresh failed for {', '.join(failed)}", details)
    return details


def _retention(pool: ConnectionPool, settings: Settings) -> dict[str, Any]:
    """Whole bronze days first (what each day became is recorded), then the row-by-row deletes."""
    days = drop_days(pool, settings)
    deleted = purge(pool, settings)
    return {"bronze_days": days, "deleted": deleted, "bronze_legacy": drop_legacy(pool),
            "bronze_older_than_days": settings.bronze_retention_days,
            "ops_logs_older_than_days": settings.ops_log_retention_days}


JOBS: dict[str, Job] = {
    "gold-refresh": Job("gold-refresh", "Refresh the gold views (all but the analytical ones) when silver moved",
                        lambda s: s.gold_refresh_interval_s, lambda pool, _: _gold_refresh(pool, CORE_VIEWS)),
    "gold-analytics": Job("gold-analytics",
                          "Refresh the analytical gold views (next-order predictions, product associations)",
                          lambda s: s.gold_analytics_interval_s,
                          lambda pool, _: _gold_refresh(pool, ANALYTICAL_VIEWS)),
    "product-relink": Job("product-relink", "Link unlinked line items when the product catalogue changed",
                          lambda s: s.relink_interval_s, lambda pool, s: relink(pool, s)),
    "retention": Job("retention",
                     "Drop bronze days and delete ops logs past SCOUT_BRONZE_/OPS_LOG_RETENTION_DAYS",
                     lambda s: s.retention_interval_s, _retention),
    "quality-checks": Job("quality-checks", "Great Expectations suites on silver and gold; failures open alerts",
                          lambda s: s.quality_interval_s, quality_job),
    "bronze-partitions": Job("bronze-partitions",
                             "Create bronze's day partitions SCOUT_BRONZE_PARTITION_DAYS_AHEAD ahead",
                             lambda s: s.bronze_partitions_interval_s,
                             lambda pool, s: ensure_partitions(pool, days_ahead=s.bronze_partition_days_ahead)),
}


def run_job(name: str, pool: ConnectionPool, settings: Settings, jobs: Mapping[str, Job] = JOBS) -> dict[str, Any]:
    """Run one job now; the run is recorded in ops.job_runs, and a failure is re-raised after that."""
    job = jobs[name]
    with pool.connection() as conn:
        conn.autocommit = True
        row = conn.execute(q("job_run_start"), {"job": name}).fetchone()
        run_id = row[0] if row else None
    status, error, details = "succeeded", None, {}
    try:
        details = job.run(pool, settings)
        return details
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        details = exc.details if isinstance(exc, JobFailed) else {}
        raise
    finally:
        JOB_RUNS.labels(name, status).inc()
        with pool.connection() as conn:
            conn.autocommit = True
            conn.execute(q("job_run_finish"),
                         {"id": run_id, "status": status, "error": error, "details": Jsonb(details)})


def last_runs(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """The latest recorded run of every job that ran: started_at, finished_at, status, error."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q("job_last_runs"))
        return {str(r.pop("job_name")): r for r in cur.fetchall()}
