"""Alert check: no open critical quality alert in ops.alerts (warnings are shown, not failed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cli.verify.model import Result, ago, fail, ok, warn
from scout.db import q


def alerts(conn: psycopg.Connection[Any]) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(q("verify_open_alerts")).fetchall()
    return judge_alerts(rows)


def judge_alerts(rows: Iterable[Mapping[str, Any]]) -> Result:
    check = "alerts"
    open_alerts = list(rows)
    critical = [a for a in open_alerts if a["severity"] == "critical"]
    warnings = len(open_alerts) - len(critical)
    if critical:
        first = critical[0]
        subject = f" [{first['subject']}]" if first["subject"] else ""
        since = ago((first["now"] - first["first_seen"]).total_seconds())
        more = f" (+{len(critical) - 1} more critical)" if len(critical) > 1 else ""
        return fail(check, f"critical {first['rule']}{subject} open for {since}: {first['message']}{more}; "
                           "see `scout quality alerts` and docs/RUNBOOK.md")
    if warnings:
        return warn(check, f"no critical alert; {warnings} warning(s) open: `scout quality alerts`")
    return ok(check, "no open alert")
