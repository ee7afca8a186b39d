"""Analyst reads of gold: every query runs as scout_reader in a read-only transaction with a timeout.

Example::

    result = await run_query(pool, settings, "SELECT * FROM gold.dashboard_summary")   # guarded first
    body = await store_detail(pool, settings, "STORE-001")      # summary, segment, prediction
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from ingest_api.errors import ApiError, database_unavailable
from ingest_api.query_guard import QueryRefused, guard
from scout.csv_cells import csv_writer
from scout.db import q
from scout.settings import Settings

CENT = Decimal("0.01")
_json_loads = partial(json.loads, parse_float=Decimal)  # money inside jsonb stays exact
_SUMMARY = ("orders", "revenue", "average_order_value", "active_days", "first_day", "last_day")
_SEGMENT = ("as_of_day", "value_tier", "value_score", "orders_per_week", "tenure_days", "recency_days",
            "usual_gap_days", "recency_ratio", "churn_risk")


@dataclass(frozen=True)
class QueryResult:
    sql: str
    columns: list[dict[str, str]]
    rows: list[tuple[Any, ...]]
    limit: int
    limit_applied: bool


@asynccontextmanager
async def reader_session(pool: AsyncConnectionPool | None,
                         settings: Settings) -> AsyncIterator[psycopg.AsyncConnection]:
    """A connection inside a read-only transaction as scout_reader, rolled back at the end."""
    if pool is None:
        raise database_unavailable()
    try:
        async with pool.connection() as conn, conn.transaction(force_rollback=True):
            await conn.execute(q("reader_read_only"))
            await conn.execute(q("reader_role"))
            await conn.execute(q("reader_limits"), {"timeout": f"{settings.query_timeout_ms}ms"})
            yield conn
    except psycopg.OperationalError as exc:  # includes the pool's timeout
        raise database_unavailable(exc) from None


async def _fetch(conn: psycopg.AsyncConnection, name: str,
                 params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        set_json_loads(_json_loads, cur)
        await cur.execute(q(name), params)
        return await cur.fetchall()


def _refused_by_database(exc: psycopg.Error, settings: Settings) -> ApiError:
    message = (exc.diag.message_primary or str(exc)).strip()
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return ApiError(400, "query_timeout",
                        f"the query ran longer than {settings.query_timeout_ms} ms and was cancelled")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction):
        return ApiError(400, "query_refused", f"refused by the database for the read-only analyst role: {message}")
    if isinstance(exc, psycopg.OperationalError):
        return database_unavailable(message)
    return ApiError(400, "query_failed", f"the query failed: {message}")


async def run_query(pool: AsyncConnectionPool | None, settings: Settings, text: str) -> QueryResult:
    """Guard the analyst's SQL (400 with the reason when refused), then run what the guard produced."""
    try:
        guarded = guard(text, max_rows=settings.query_max_rows)
    except QueryRefused as exc:
        raise ApiError(400, "query_refused", str(exc)) from None
    async with reader_session(pool, settings) as conn:
        try:
            async with conn.cursor() as cur:
                set_json_loads(_json_loads, cur)
                # binary=True: the extended protocol, which never runs more than one statement
                await cur.execute(guarded.sql, binary=True)
                types = cur.adapters.types
                columns = [{"name": d.name, "type": _type_name(types.get(d.type_code))} for d in cur.description or []]
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise _refused_by_database(exc, settings) from None
    return QueryResult(guarded.sql, columns, rows, guarded.limit, guarded.limit_applied)


def _type_name(info: Any) -> str:
    return str(info.name) if info is not None else "unknown"


async def dashboard(pool: AsyncConnectionPool | None, settings: Settings) -> dict[str, Any]:
    async with reader_session(pool, settings) as conn:
        (summary,) = await _fetch(conn, "dashboard_summary")
        status = await _fetch(conn, "refresh_status_of", {"views": ["gold.dashboard_summary"]})
    summary["refreshed_at"] = status[0]["last_refresh_at"] if status else None
    summary["current"] = bool(status and status[0]["current"])
    return summary


async def store_detail(pool: AsyncConnectionPool | None, settings: Settings, store_id: str) -> dict[str, Any]:
    async with reader_session(pool, settings) as conn:
        segments = await _fetch(conn, "store_segment", {"store_id": store_id})
        predictions = await _fetch(conn, "store_prediction", {"store_id": store_id})
    if not segments:
        raise ApiError(404, "store_not_found", f"no gold data for store_id={store_id!r}")
    segment = segments[0]
    return {
        "store_id": store_id,
        "summary": {k: segment[k] for k in _SUMMARY},
        "segment": {k: segment[k] for k in _SEGMENT},
        "prediction": predictions[0] if predictions else None,
    }


async def upsell(pool: AsyncConnectionPool | None, settings: Settings, *, store_id: str | None,
                 product_ids: list[str], limit: int) -> dict[str, Any]:
    """Products to suggest for a basket: the given products, or else the store's predicted basket."""
    basket = list(dict.fromkeys(product_ids))
    source = "request"
    async with reader_session(pool, settings) as conn:
        if store_id is not None:
            if not await _fetch(conn, "store_segment", {"store_id": store_id}):
                raise ApiError(404, "store_not_found", f"no gold data for store_id={store_id!r}")
            if not basket:
                predicted = await _fetch(conn, "store_prediction", {"store_id": store_id})
                items = predicted[0]["expected_items"] if predicted else []
                basket, source = [i["sku"] for i in items if i.get("sku")], "predicted"
        if not basket:
            raise ApiError(422, "validation_error",
                           "product_id: give one or more, or a store_id with a predicted basket",
                           details=[{"field": "product_id", "reason": "the basket is empty"}])
        suggestions = await _fetch(conn, "upsell_suggestions", {"basket": basket, "limit": limit})
    return {"store_id": store_id, "basket": basket, "basket_source": source, "suggestions": suggestions}


def _totals(days: list[dict[str, Any]]) -> dict[str, Any]:
    orders = sum(int(d["orders"]) for d in days)
    revenue = sum((Decimal(d["revenue"]) for d in days), Decimal("0.00"))
    aov = (revenue / orders).quantize(CENT) if orders else None
    return {"orders": orders, "revenue": revenue, "average_order_value": aov}


def _change_pct(now: Decimal | int, before: Decimal | int) -> Decimal | None:
    if not before:
        return None
    return (Decimal(now - before) * 100 / Decimal(before)).quantize(Decimal("0.1"))


async def trends(pool: AsyncConnectionPool | None, settings: Settings, *, days: int,
                 store_id: str | None) -> dict[str, Any]:
    """Daily orders and revenue over the last ``days`` days of data, against the ``days`` before."""
    async with reader_session(pool, settings) as conn:
        rows = await _fetch(conn, "trend_days", {"days": days, "store_id": store_id})
    if store_id is not None and not rows:
        raise ApiError(404, "store_not_found", f"no gold data for store_id={store_id!r}")
    current = [r for r in rows if r["current"]]
    previous = [r for r in rows if not r["current"]]
    now, before = _totals(current), _totals(previous)
    return {
        "store_id": store_id, "days": days, "as_of": current[-1]["day"] if current else None,
        "series": [{"day": r["day"], "orders": r["orders"], "revenue": r["revenue"],
                    "average_order_value": (r["revenue"] / r["orders"]).quantize(CENT) if r["orders"] else None}
                   for r in current],
        "current": now, "previous": before,
        "change_pct": {"orders": _change_pct(now["orders"], before["orders"]),
                       "revenue": _change_pct(now["revenue"], before["revenue"])},
    }


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # money and ratios stay exact: a JSON string
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


def to_json(body: Any) -> bytes:
    return orjson.dumps(body, default=_default)


def query_body(result: QueryResult) -> dict[str, Any]:
    return {"columns": result.columns, "rows": [list(r) for r in result.rows], "row_count": len(result.rows),
            "limit": result.limit, "limit_applied": result.limit_applied, "sql": result.sql}


def to_csv(result: QueryResult) -> str:
    """The result as CSV; text that could start a spreadsheet formula is quoted (``scout.csv_cells``)."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow([c["name"] for c in result.columns])
    for row in result.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    """A cell: numbers stay numbers (a negative amount is not a formula), everything else becomes text."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    if isinstance(value, dict | list):
        return to_json(value).decode()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(_default(value)) if not isinstance(value, str | bool) else str(value)
