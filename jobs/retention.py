"""Retention: delete processed bronze rows and old ops log rows past their configured ages, in small transactions.

Example::

    deleted = purge(pool, settings)     # {"bronze": 1200, "gold_refresh_log": 80000, "job_runs": 8000}
"""

from __future__ import annotations

import logging

from psycopg_pool import ConnectionPool

from scout.db import q
from scout.settings import Settings

log = logging.getLogger(__name__)


def _delete_in_batches(pool: ConnectionPool, query: str, *, days: int, batch: int) -> int:
    deleted = 0
    while True:
        with pool.connection() as conn:  # one transaction per batch: short locks, steady progress
            n = conn.execute(q(query), {"days": days, "batch": batch}).rowcount
        deleted += max(n, 0)
        if n < batch:
            return deleted


def purge_bronze(pool: ConnectionPool, *, days: int, batch: int) -> int:
    """Delete processed bronze rows received more than ``days`` ago; unprocessed rows and rows of open
    quarantine entries stay."""
    return _delete_in_batches(pool, "purge_processed_bronze", days=days, batch=batch)


def purge(pool: ConnectionPool, settings: Settings) -> dict[str, int]:
    """Everything past its age: bronze (SCOUT_BRONZE_RETENTION_DAYS), the gold refresh log and job runs
    (SCOUT_OPS_LOG_RETENTION_DAYS). Returns the rows deleted per table."""
    batch = settings.retention_batch_size
    deleted = {
        "bronze": purge_bronze(pool, days=settings.bronze_retention_days, batch=batch),
        "gold_refresh_log": _delete_in_batches(pool, "purge_refresh_log", days=settings.ops_log_retention_days,
                                               batch=batch),
        "job_runs": _delete_in_batches(pool, "purge_job_runs", days=settings.ops_log_retention_days, batch=batch),
    }
    log.info("retention: deleted %s", deleted)
    return deleted
