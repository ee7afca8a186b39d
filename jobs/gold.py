"""Smart gold refresh: each view under pg_try_advisory_lock, in dependency order, skipped when
silver has not moved since the view's last watermark; every attempt logged in ops.

Example::

    with open_pool(settings, name="jobs") as pool:
        results = refresh_gold(pool)          # [RefreshResult(view=..., status="refreshed", ...)]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from observability.metrics import GOLD_LAST_REFRESH, GOLD_REFRESH_SECONDS, GOLD_REFRESHES
from scout.db import q

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GoldView:
    name: str
    depends_on: tuple[str, ...] = ()


# Dependency order: a view appears after every view it reads ("platinum" after gold).
GOLD_VIEWS: tuple[GoldView, ...] = (GoldView("gold.sales_by_store_day"),)

Status = Literal["refreshed", "skipped", "failed"]


@dataclass(frozen=True)
class RefreshResult:
    view: str
    status: Status
    reason: str | None
    watermark: int | None
    rows: int | None
    duration_ms: int


def _log(conn: psycopg.Connection, result: RefreshResult, started: datetime, finished: datetime) -> None:
    conn.execute(
        q("insert_refresh_log"),
        {"view": result.view, "started_at": started, "finished_at": finished, "status": result.status,
         "reason": result.reason, "watermark": result.watermark, "rows": result.rows,
         "duration_ms": result.duration_ms},
    )
    GOLD_REFRESHES.labels(result.view, result.status).inc()


def _refresh_locked(conn: psycopg.Connection, view: GoldView, *, force: bool) -> RefreshResult:
    t0 = time.perf_counter()
    version_row = conn.execute(q("silver_version")).fetchone()
    version = int(version_row[0]) if version_row else 0
    last_row = conn.execute(q("gold_watermark"), {"view": view.name}).fetchone()
    last = int(last_row[0]) if last_row else None
    if not force and last is not None and last >= version:
        GOLD_LAST_REFRESH.labels(view.name).set(time.time())  # nothing new: still current
        return RefreshResult(view.name, "skipped", "no new silver data", version, None, _ms(t0))
    conn.execute(q("refresh_view"), {"view": view.name, "concurrent": True})
    schema, name = view.name.split(".")
    count_row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
    ).fetchone()
    rows = int(count_row[0]) if count_row else 0
    duration = _ms(t0)
    conn.execute(
        q("upsert_gold_state"),
        {"view": view.name, "watermark": version, "finished_at": datetime.now(UTC), "rows": rows,
         "duration_ms": duration},
    )
    GOLD_REFRESH_SECONDS.labels(view.name).observe(duration / 1000)
    GOLD_LAST_REFRESH.labels(view.name).set(time.time())
    return RefreshResult(view.name, "refreshed", None, version, rows, duration)


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)


def refresh_view(pool: ConnectionPool, view: GoldView, *, force: bool = False) -> RefreshResult:
    key = f"scout.gold.{view.name}"
    started = datetime.now(UTC)
    with pool.connection() as conn:
        conn.autocommit = True
        locked_row = conn.execute(q("try_advisory_lock"), {"key": key}).fetchone()
        if not (locked_row and locked_row[0]):
            result = RefreshResult(view.name, "skipped", "another refresh holds the lock", None, None, 0)
            _log(conn, result, started, datetime.now(UTC))
            return result
        try:
            try:
                result = _refresh_locked(conn, view, force=force)
            except psycopg.Error as exc:
                log.error("gold: refresh of %s failed: %r", view.name, exc)
                result = RefreshResult(view.name, "failed", str(exc)[:500], None, None, 0)
                _log(conn, result, started, datetime.now(UTC))
                raise
            _log(conn, result, started, datetime.now(UTC))
            return result
        finally:
            conn.execute(q("advisory_unlock"), {"key": key})


def refresh_gold(pool: ConnectionPool, *, force: bool = False,
                 views: tuple[GoldView, ...] = GOLD_VIEWS) -> list[RefreshResult]:
    """Refresh every view in order; a failed view stops its dependants, not the others."""
    results: list[RefreshResult] = []
    failed: set[str] = set()
    for view in views:
        if failed.intersection(view.depends_on):
            results.append(RefreshResult(view.name, "skipped", "an input view failed", None, None, 0))
            continue
        try:
            results.append(refresh_view(pool, view, force=force))
        except psycopg.Error as exc:
            failed.add(view.name)
            results.append(RefreshResult(view.name, "failed", str(exc)[:500], None, None, 0))
    return results
