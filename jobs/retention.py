"""Retention: drop whole bronze days past their age, delete old rows outside the day partitions and old ops log
rows, in small transactions.

Example::

    deleted = purge(pool, settings)     # {"bronze": 1200, "gold_refresh_log": 80000, "job_runs": 8000}
    days = drop_days(pool, settings)    # {"2026-11-05": "dropped", "2026-11-06": "kept: open quarantine"}
    drop_legacy(pool)                   # "dropped" once retention deleted the legacy partition's last row
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from psycopg import sql
from psycopg_pool import ConnectionPool

from jobs.partitions import cutoff, drop_old_days, partitions
from scout.db import q
from scout.settings import Settings

log = logging.getLogger(__name__)

# The partitions that are not one day's: their old rows are deleted one by one.
ROW_BY_ROW = ("transactions_default", "transactions_legacy")


def _delete_in_batches(pool: ConnectionPool, query: str | sql.Composed, params: Mapping[str, object], *,
                       batch: int) -> int:
    deleted = 0
    while True:
        with pool.connection() as conn:  # one transaction per batch: short locks, steady progress
            n = conn.execute(q(query) if isinstance(query, str) else query, {**params, "batch": batch}).rowcount
        deleted += max(n, 0)
        if n < batch:
            return deleted


def purge_bronze(pool: ConnectionPool, *, days: int, batch: int, now: datetime | None = None) -> int:
    """Delete processed rows received before the retention cutoff from the default and legacy partitions;
    unprocessed rows and rows of open quarantine entries stay. (Day partitions go whole: ``drop_days``.)"""
    before = cutoff(now or datetime.now(UTC), days)
    present = set(partitions(pool))
    deleted = 0
    for name in ROW_BY_ROW:
        if name in present:
            query = sql.SQL(q("purge_processed_bronze")).format(part=sql.Identifier("bronze", name))
            deleted += _delete_in_batches(pool, query, {"before": before}, batch=batch)
    return deleted


def drop_days(pool: ConnectionPool, settings: Settings, now: datetime | None = None) -> dict[str, str]:
    """Every bronze day older than SCOUT_BRONZE_RETENTION_DAYS dropped whole, unless still needed (kept)."""
    before = cutoff(now or datetime.now(UTC), settings.bronze_retention_days)
    outcome = drop_old_days(pool, before=before.date())
    if outcome:
        log.info("retention: bronze days %s", outcome)
    return outcome


def drop_legacy(pool: ConnectionPool) -> str | None:
    """The partition of the rows from before migration 0027, dropped once empty; None when there is none."""
    if "transactions_legacy" not in partitions(pool):
        return None
    with pool.connection() as conn:
        row = conn.execute(q("bronze_drop_legacy")).fetchone()
    return str(row[0]) if row else None


def purge(pool: ConnectionPool, settings: Settings) -> dict[str, int]:
    """Row-by-row deletes: bronze outside the day partitions (SCOUT_BRONZE_RETENTION_DAYS), the gold refresh
    log and job runs (SCOUT_OPS_LOG_RETENTION_DAYS). Returns the rows deleted per table."""
    batch = settings.retention_batch_size
    ops_days = {"days": settings.ops_log_retention_days}
    deleted = {
        "bronze": purge_bronze(pool, days=settings.bronze_retention_days, batch=batch),
        "gold_refresh_log": _delete_in_batches(pool, "purge_refresh_log", ops_days, batch=batch),
        "job_runs": _delete_in_batches(pool, "purge_job_runs", ops_days, batch=batch),
    }
    log.info("retention: deleted %s", deleted)
    return deleted
