"""Data-flow checks read from PostgreSQL: bronze's day partitions are ahead and its default partition empty, silver
keeps up with bronze, gold views are populated and fresh.

Gold is fresh when a view reflects the current silver watermark, or, if silver has moved since, when its
last refresh is younger than ``SCOUT_GOLD_MAX_STALENESS_S`` (the same SLA the alert rules use).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cli.verify.model import Expected, Result, ago, fail, ok, warn
from scout.db import q


def bronze_partitions(conn: psycopg.Connection[Any]) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q("verify_bronze_partitions")).fetchone()
    assert row is not None
    return judge_partitions(int(row["default_rows"]), row["oldest"], row["newest"], bool(row["tomorrow"]))


def judge_partitions(default_rows: int, oldest: datetime | None, newest: datetime | None, tomorrow: bool) -> Result:
    check = "bronze partitions"
    if default_rows:
        return fail(check, f"{default_rows:,} bronze row(s) in bronze.transactions_default (received {oldest} to "
                           f"{newest}): their day had no partition, and retention can only delete them one by one; "
                           "see docs/RUNBOOK.md#bronze-default-partition")
    if not tomorrow:
        return warn(check, "no partition for tomorrow (UTC) yet: its rows would land in the default partition; "
                           "run `scout jobs run bronze-partitions` and check that `scout scheduler` runs")
    return ok(check, "tomorrow's day partition exists, none of bronze's rows is in the default partition")


def silver_backlog(conn: psycopg.Connection[Any], expected: Expected) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q("verify_silver_backlog")).fetchone()
    assert row is not None
    return judge_backlog(int(row["pending"]), row["oldest"], row["now"], expected)


def judge_backlog(pending: int, oldest: datetime | None, now: datetime, expected: Expected) -> Result:
    check = "silver backlog"
    if pending == 0 or oldest is None:
        return ok(check, "no bronze row waiting for silver")
    age = (now - oldest).total_seconds()
    detail = f"{pending:,} bronze row(s) waiting, oldest received {ago(age)} ago"
    if age > expected.max_silver_delay_s:
        return fail(check, f"{detail} (> --max-silver-delay {expected.max_silver_delay_s:g} s): the silver loop "
                           "of the workers is not keeping up or not running; check the worker log and "
                           "`scout quarantine list`")
    return ok(check, detail)


def gold(conn: psycopg.Connection[Any], expected: Expected, sla_s: float) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(q("verify_gold_state")).fetchall()
    return judge_gold(rows, expected.gold_views, sla_s)


def judge_gold(rows: Iterable[Mapping[str, Any]], views: tuple[str, ...], sla_s: float) -> Result:
    """One result for every gold view; problems are grouped by cause, each naming its views."""
    check = "gold views"
    by_view = {r["view_name"]: r for r in rows}
    missing = [v for v in views if v not in by_view]
    if missing:
        return fail(check, f"views {_short(missing)} do not exist: run `scout migrate`")
    if not views:
        return warn(check, "no gold views expected")
    causes: dict[str, list[str]] = {}
    for view in views:
        cause = _view_problem(by_view[view], sla_s)
        if cause:
            causes.setdefault(cause, []).append(view)
    if causes:
        shown = "; ".join(f"{cause}: {_short(names)}" for cause, names in causes.items())
        return fail(check, f"{shown}; is `scout scheduler` running? see `scout jobs list` and its log")
    current = sum(1 for v in views if by_view[v]["watermark"] >= by_view[v]["silver_version"])
    rows_total = sum(int(by_view[v]["rows"] or 0) for v in views)
    oldest = max((by_view[v]["now"] - by_view[v]["last_refresh_at"]).total_seconds() for v in views)
    return ok(check, f"{len(views)} views populated, {rows_total:,} rows; {current} current with silver, "
                     f"oldest refresh {ago(oldest)} ago (SLA {sla_s:g} s)")


def _short(names: list[str], keep: int = 3) -> str:
    shown = ", ".join(n.removeprefix("gold.") for n in names[:keep])
    return shown + (f" (+{len(names) - keep} more)" if len(names) > keep else "")


def _view_problem(r: Mapping[str, Any], sla_s: float) -> str | None:
    if not r["populated"]:
        return "not populated (run `scout jobs run gold-refresh`)"
    if r["last_refresh_at"] is None:
        return "never refreshed by the gold-refresh job"
    if r["last_status"] == "failed":
        return f"last refresh failed ({r['last_reason']})"
    if r["watermark"] >= r["silver_version"]:
        return None  # reflects every silver change
    if (r["now"] - r["last_refresh_at"]).total_seconds() > sla_s:
        return f"behind silver for longer than SCOUT_GOLD_MAX_STALENESS_S={sla_s:g} s"
    return None
