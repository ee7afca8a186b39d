"""Scout's scheduled jobs by name, each run recorded in ops.job_runs.

Example::

    run_job("gold-refresh", pool, settings)     # what `scout jobs run gold-refresh` does
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from jobs.gold import refresh_gold
from jobs.products import relink
from observability.metrics import JOB_RUNS
from quality.runner import quality_job
from scout.db import q
from scout.errors import ScoutError
from scout.settings import Settings

log = logging.getLogger(__name__)


class JobFailed(ScoutError):
    """A job finished with failures; the run is recorded as failed and reported."""


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    interval_s: Callable[[Settings], float]
    run: Callable[[ConnectionPool, Settings], dict[str, Any]]


def _gold_refresh(pool: ConnectionPool, _: Settings) -> dict[str, Any]:
    results = refresh_gold(pool)
    details = {r.view: {"status": r.status, "reason": r.reason, "rows": r.rows, "ms": r.duration_ms}
               for r in results}
    failed = [r.view for r in results if r.status == "failed"]
    if failed:
        raise JobFailed(f"gold refresh failed for {', '.join(failed)}: {details}")
    return details


JOBS: dict[str, Job] = {
    "gold-refresh": Job("gold-refresh", "Refresh gold materialized views when silver moved",
                        lambda s: s.gold_refresh_interval_s, _gold_refresh),
    "product-relink": Job("product-relink", "Link unlinked line items when the product catalogue changed",
                          lambda s: s.relink_interval_s, lambda pool, s: relink(pool, s)),
    "quality-checks": Job("quality-checks", "Great Expectations suites on silver and gold; failures open alerts",
                          lambda s: s.quality_interval_s, quality_job),
}


def run_job(name: str, pool: ConnectionPool, settings: Settings) -> dict[str, Any]:
    job = JOBS[name]
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
        raise
    finally:
        JOB_RUNS.labels(name, status).inc()
        with pool.connection() as conn:
            conn.autocommit = True
            conn.execute(q("job_run_finish"),
                         {"id": run_id, "status": status, "error": error, "details": Jsonb(details)})
