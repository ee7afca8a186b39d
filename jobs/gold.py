"""Smart gold refresh: each view under pg_try_advisory_lock, in dependency order, skipped when its source
(silver, or a platinum view's input views) has not moved since its last watermark; every attempt logged in ops.

Example::

    with open_pool(settings, name="jobs") as pool:
        results = refresh_gold(pool)          # [RefreshResult(view=..., status="refreshed", ...)]
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from observability.metrics import GOLD_LAST_REFRESH, GOLD_REFRESH_SECONDS, GOLD_REFRESHES, GOLD_VIEW_ROWS
from scout.db import q, try_advisory_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GoldView:
    """A gold relation the refresh keeps current.

    ``aggregate`` names the table in schema agg the view reads (sql/migrations/0017, 0028): its queued days
    (or, for ``store_orders``, its queued stores) are recomputed first (everything when rebuilt).
    ``materialized`` views are then refreshed CONCURRENTLY; a plain view reads its aggregate directly.
    ``analytical`` views (next-order predictions, product associations) are refreshed by their own job on
    their own interval (jobs.registry).
    """

    name: str
    depends_on: tuple[str, ...] = ()
    aggregate: str | None = None
    materialized: bool = True
    analytical: bool = False


# Dependency order: a view appears after every view it reads ("platinum" after gold). A view without
# inputs here reads silver (directly or through its aggregate); docs/ANALYSTS.md describes each one.
GOLD_VIEWS: tuple[GoldView, ...] = (
    GoldView("gold.sales_by_store_day", aggregate="store_day", materialized=False),
    GoldView("gold.sales_by_hour", aggregate="store_hour_day"),
    GoldView("gold.sales_by_product_day", aggregate="product_day", materialized=False),
    GoldView("gold.sales_by_category_day", aggregate="category_day"),
    GoldView("gold.basket_metrics", aggregate="basket_day", materialized=False),
    GoldView("gold.store_segments", depends_on=("gold.sales_by_store_day",)),
    GoldView("gold.dashboard_summary", depends_on=("gold.sales_by_store_day",)),
    GoldView("gold.next_order_predictions", aggregate="store_orders", analytical=True),
    GoldView("gold.product_associations", aggregate="basket_pairs_day", analytical=True),
)
CORE_VIEWS = tuple(v for v in GOLD_VIEWS if not v.analytical)
ANALYTICAL_VIEWS = tuple(v for v in GOLD_VIEWS if v.analytical)

Status = Literal["refreshed", "skipped", "failed"]


@dataclass(frozen=True)
class RefreshResult:
    view: str
    status: Status
    reason: str | None
    watermark: int | None
    rows: int | None
    duration_ms: int


def check_order(views: tuple[GoldView, ...]) -> None:
    """Refuse a view list where a view comes before one of its inputs."""
    seen: set[str] = set()
    for view in views:
        missing = [d for d in view.depends_on if d not in seen]
        if missing:
            raise ValueError(f"gold view {view.name} is listed before its inputs {missing}")
        seen.add(view.name)


def default_runner(pool: ConnectionPool) -> str:
    """Who refreshes: host, process and pool, so scheduler replicas are told apart in the log."""
    return f"{socket.gethostname()}:{os.getpid()}:{pool.name}"


def _log(conn: psycopg.Connection, result: RefreshResult, started: datetime, finished: datetime,
         runner: str) -> None:
    conn.execute(
        q("insert_refresh_log"),
        {"view": result.view, "started_at": started, "finished_at": finished, "status": result.status,
         "reason": result.reason, "watermark": result.watermark, "rows": result.rows,
         "duration_ms": result.duration_ms, "runner": runner},
    )
    GOLD_REFRESHES.labels(result.view, result.status).inc()


def _source_version(conn: psycopg.Connection, view: GoldView) -> tuple[int | None, str]:
    """The version of what the view reads, and why it is skipped when that has not moved.

    A view on silver reads the silver watermark. A platinum view reads the oldest watermark among its
    inputs, so it refreshes only after every input was refreshed past its own last watermark, whichever
    replica refreshed them; None while an input was never refreshed.
    """
    if not view.depends_on:
        row = conn.execute(q("silver_version")).fetchone()
        return (int(row[0]) if row else 0), "no new silver data"
    found = {str(name): int(mark) for name, mark in
             conn.execute(q("input_watermarks"), {"views": list(view.depends_on)}).fetchall()}
    if len(found) < len(view.depends_on):
        return None, "an input view has not been refreshed yet"
    return min(found.values()), "no input view refreshed since"


def _refresh_locked(conn: psycopg.Connection, view: GoldView, *, force: bool, rebuild: bool) -> RefreshResult:
    t0 = time.perf_counter()
    source, why_skip = _source_version(conn, view)
    last_row = conn.execute(q("gold_watermark"), {"view": view.name}).fetchone()
    last = int(last_row[0]) if last_row else None
    if not force and (source is None or (last is not None and last >= source)):
        if source is not None:
            GOLD_LAST_REFRESH.labels(view.name).set(time.time())  # nothing new: still current
        return RefreshResult(view.name, "skipped", why_skip, source, None, _ms(t0))
    version = source if source is not None else 0
    if view.aggregate is not None:
        conn.execute(q("refresh_aggregate"), {"aggregate": view.aggregate, "full": rebuild})
    if view.materialized:
        conn.execute(q("refresh_view"), {"view": view.name, "concurrent": True})
    if not view.materialized and view.aggregate:
        # A plain view has one row per row of its aggregate: counting the table skips the view's joins.
        count_row = conn.execute(q("aggregate_rows"), {"aggregate": view.aggregate}).fetchone()
    else:
        schema, name = view.name.split(".")
        count_row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))).fetchone()
    rows = int(count_row[0]) if count_row else 0
    duration = _ms(t0)
    conn.execute(
        q("upsert_gold_state"),
        {"view": view.name, "watermark": version, "finished_at": datetime.now(UTC), "rows": rows,
         "duration_ms": duration},
    )
    GOLD_REFRESH_SECONDS.labels(view.name).observe(duration / 1000)
    GOLD_VIEW_ROWS.labels(view.name).set(rows)
    GOLD_LAST_REFRESH.labels(view.name).set(time.time())
    return RefreshResult(view.name, "refreshed", None, version, rows, duration)


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)


def refresh_view(pool: ConnectionPool, view: GoldView, *, force: bool = False, rebuild: bool = False,
                 runner: str | None = None) -> RefreshResult:
    key = f"scout.gold.{view.name}"
    runner = runner or default_runner(pool)
    started = datetime.now(UTC)
    with pool.connection() as conn:
        conn.autocommit = True
        with try_advisory_lock(conn, key) as mine:
            if not mine:
                result = RefreshResult(view.name, "skipped", "another refresh holds the lock", None, None, 0)
                _log(conn, result, started, datetime.now(UTC), runner)
                return result
            try:
                result = _refresh_locked(conn, view, force=force or rebuild, rebuild=rebuild)
            except psycopg.Error as exc:
                log.error("gold: refresh of %s failed: %r", view.name, exc)
                result = RefreshResult(view.name, "failed", str(exc)[:500], None, None, 0)
                _log(conn, result, started, datetime.now(UTC), runner)
                raise
            _log(conn, result, started, datetime.now(UTC), runner)
            return result


def refresh_gold(pool: ConnectionPool, *, force: bool = False, rebuild: bool = False,
                 views: tuple[GoldView, ...] = GOLD_VIEWS, runner: str | None = None) -> list[RefreshResult]:
    """Refresh every view in order; a failed view stops its dependants, not the others.

    ``force`` refreshes views whose source has not moved; ``rebuild`` (implies force) also recomputes every
    day of every aggregate from silver instead of the queued days only (repair, or a benchmark of the worst case).
    """
    check_order(views)
    runner = runner or default_runner(pool)
    results: list[RefreshResult] = []
    failed: set[str] = set()
    for view in views:
        if failed.intersection(view.depends_on):
            skipped = RefreshResult(view.name, "skipped", "an input view failed", None, None, 0)
            with pool.connection() as conn:
                conn.autocommit = True
                _log(conn, skipped, datetime.now(UTC), datetime.now(UTC), runner)
            results.append(skipped)
            failed.add(view.name)  # its own dependants wait too
            continue
        try:
            results.append(refresh_view(pool, view, force=force, rebuild=rebuild, runner=runner))
        except psycopg.Error as exc:
            failed.add(view.name)
            results.append(RefreshResult(view.name, "failed", str(exc)[:500], None, None, 0))
    return results
