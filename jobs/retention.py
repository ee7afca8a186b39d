"""Bronze retention: delete processed bronze rows past the configured age, in small transactions.

Example::

    deleted = purge_bronze(pool, days=settings.bronze_retention_days, batch=settings.retention_batch_size)
"""

from __future__ import annotations

import logging

from psycopg_pool import ConnectionPool

from scout.db import q

log = logging.getLogger(__name__)


def purge_bronze(pool: ConnectionPool, *, days: int, batch: int) -> int:
    """Delete processed bronze rows received more than ``days`` ago; unprocessed rows and rows of open
    quarantine entries stay. One transaction per ``batch`` rows; returns how many were deleted."""
    deleted = 0
    while True:
        with pool.connection() as conn:
            n = conn.execute(q("purge_processed_bronze"), {"days": days, "batch": batch}).rowcount
        deleted += max(n, 0)
        if n < batch:
            break
    log.info("retention: deleted %d processed bronze rows older than %d days", deleted, days)
    return deleted
