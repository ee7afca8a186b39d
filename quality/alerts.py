"""Alerts from failing checks: one open alert per (rule, subject), updated on repeat, resolved when it passes.

Example::

    with conn.transaction():
        changes = apply_results(conn, results, window_start=since)   # opened / updated / resolved
    export_active(conn)                                               # scout_alerts_active{rule,severity}
    rows = list_alerts(conn, status="active")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from observability.metrics import ALERTS_ACTIVE
from quality.suites import CheckResult
from scout.db import q

Status = Literal["active", "resolved", "all"]


@dataclass
class AlertChanges:
    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def runbook_anchor(rule: str) -> str:
    """The rule's section in docs/RUNBOOK.md (``## quality-<rule with dashes>``)."""
    return f"docs/RUNBOOK.md#quality-{rule.replace('_', '-')}"


def message(result: CheckResult) -> str:
    check = result.check
    where = f" in {check.subject}" if check.subject else ""
    return f"{check.rule.name}{where}: {check.rule.description} ({result.observed})"


def details(result: CheckResult, *, window_start: datetime) -> dict[str, Any]:
    check = result.check
    return {
        "suite": check.suite,
        "expectation": check.name,
        "observed_value": result.observed,
        "unexpected_count": result.unexpected_count,
        "failing_keys": result.failing,
        "window_start": window_start.isoformat(),
        "runbook": runbook_anchor(check.rule.name),
    }


def apply_results(conn: psycopg.Connection, results: list[CheckResult], *, window_start: datetime) -> AlertChanges:
    """Open or update an alert per failing check, resolve the open alert of each passing one.

    A check that could not run (``error``) says nothing about the data and leaves its alert as it is.
    """
    changes = AlertChanges()
    for result in results:
        if result.error is not None:
            continue
        check = result.check
        key = {"rule": check.rule.name, "subject": check.subject}
        if result.success:
            if conn.execute(q("alert_resolve"), key).fetchall():
                changes.resolved.append(check.name)
            continue
        row = conn.execute(q("alert_upsert"), {
            **key, "severity": check.severity, "message": message(result),
            "details": Jsonb(details(result, window_start=window_start)),
        }).fetchone()
        (changes.opened if row and row[1] else changes.updated).append(check.name)
    return changes


def resolve_orphans(conn: psycopg.Connection, results: list[CheckResult], *, rules: list[str]) -> list[str]:
    """Resolve open alerts of ``rules`` that no check of this run stands for any more."""
    found = conn.execute(q("alerts_resolve_orphans"), {
        "rules": rules, "check_rules": [r.check.rule.name for r in results],
        "check_subjects": [r.check.subject for r in results],
    }).fetchall()
    return [f"{rule}[{subject}]" if subject else str(rule) for rule, subject in found]


def export_active(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """Set ``scout_alerts_active{rule,severity}`` from ops.alerts; labels with no open alert are removed."""
    active = {(str(r), str(s)): int(n) for r, s, n in conn.execute(q("alerts_active_counts")).fetchall()}
    exported = {(s.labels["rule"], s.labels["severity"]) for m in ALERTS_ACTIVE.collect() for s in m.samples}
    for rule, severity in exported - set(active):
        ALERTS_ACTIVE.remove(rule, severity)
    for (rule, severity), count in active.items():
        ALERTS_ACTIVE.labels(rule, severity).set(count)
    return active


def _params(status: Status, rule: str | None, limit: int) -> dict[str, Any]:
    if status not in ("active", "resolved", "all"):
        raise ValueError(f"status must be active, resolved or all, not {status!r}")
    return {"status": status, "rule": rule, "limit": limit}


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "status": "active" if row["resolved_at"] is None else "resolved"}


def list_alerts(conn: psycopg.Connection, *, status: Status = "active", rule: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q("alerts_list"), _params(status, rule, limit))
        return [_shape(r) for r in cur.fetchall()]


async def list_alerts_async(conn: AsyncConnection, *, status: Status = "active", rule: str | None = None,
                            limit: int = 100) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q("alerts_list"), _params(status, rule, limit))
        return [_shape(r) for r in await cur.fetchall()]
