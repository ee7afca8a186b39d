"""Bronze by day: the partitions ahead (the bronze-partitions job), and which old days retention may drop.

bronze.transactions has one partition per UTC day of received_at, named ``transactions_YYYYMMDD``, plus
``transactions_default`` (rows of a day without a partition) and, in a database converted by migration 0027,
``transactions_legacy`` (every row from before). Creating and dropping run as the table's owner
(``bronze.create_day_partitions``, ``bronze.drop_day``): the scheduler's role owns nothing.

Example::

    ensure_partitions(pool, days_ahead=7)   # {"created": ["2026-12-14"], "default_rows": 0, ...}
    day_of("transactions_20261207")          # date(2026, 12, 7); None for the default and legacy partitions
    days_to_drop(["transactions_20261105", "transactions_20261106"], cutoff=date(2026, 11, 6))  # [2026-11-05]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from scout.db import q

log = logging.getLogger(__name__)

_DAY = re.compile(r"^transactions_(\d{8})$")


def day_of(partition: str) -> date | None:
    """The UTC day a bronze partition holds, from its name; None for one that is not a day's."""
    match = _DAY.match(partition)
    return date.fromisoformat(match.group(1)) if match else None  # YYYYMMDD is ISO 8601's basic format


def cutoff(now: datetime, days: int) -> datetime:
    """Midnight (UTC) of the day ``days`` before ``now``: every row received before it is older than ``days``,
    so the days before it may go whole (rows stay up to a day longer than ``days``, never less)."""
    return datetime.combine((now.astimezone(UTC) - timedelta(days=days)).date(), time(), tzinfo=UTC)


def days_to_drop(partitions: Iterable[str], cutoff: date) -> list[date]:
    """The day partitions entirely before ``cutoff``, oldest first."""
    return sorted(d for d in map(day_of, partitions) if d is not None and d < cutoff)


def partitions(pool: ConnectionPool) -> list[str]:
    with pool.connection() as conn:
        return [str(r[0]) for r in conn.execute(q("bronze_partitions"))]


def default_rows(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        row = conn.execute(q("bronze_default_rows")).fetchone()
    return int(row[0]) if row else 0


def ensure_partitions(pool: ConnectionPool, *, days_ahead: int) -> dict[str, Any]:
    """Create today's partition and the next ``days_ahead`` days' that are missing. A day whose rows already
    sit in the default partition is not created (its rows would have to move): reported under ``blocked``."""
    with pool.connection() as conn:
        made = conn.execute(q("bronze_create_day_partitions"), {"days_ahead": days_ahead}).fetchall()
    created = [d.isoformat() for d, status in made if status == "created"]
    blocked = [d.isoformat() for d, status in made if status == "default holds rows"]
    busy = [d.isoformat() for d, status in made if status == "busy"]  # landings held the lock: next run
    stray = default_rows(pool)
    if created:
        log.info("bronze partitions: created %s", ", ".join(created))
    if blocked or stray:
        log.warning("bronze partitions: %d row(s) in bronze.transactions_default; days not created: %s",
                    stray, ", ".join(blocked) or "none")
    if busy:
        log.info("bronze partitions: bronze was busy, %s created on a later run", ", ".join(busy))
    return {"created": created, "blocked": blocked, "busy": busy, "default_rows": stray, "days_ahead": days_ahead}


def drop_old_days(pool: ConnectionPool, *, before: date) -> dict[str, str]:
    """Detach and drop each day partition before ``before``, one transaction per day; a day a row of which is
    still queued for silver or quarantined (open) is kept. Returns each day's outcome."""
    outcome: dict[str, str] = {}
    for day in days_to_drop(partitions(pool), before):
        with pool.connection() as conn:
            row = conn.execute(q("bronze_drop_day"), {"day": day}).fetchone()
        outcome[day.isoformat()] = str(row[0]) if row else "no partition"
    return outcome
