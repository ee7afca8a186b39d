"""Scheduler check: every registered job has run recently, judged from ops.job_runs.

Every job runs when the scheduler starts and then on its interval, so a job whose last activity (start
or finish) is older than a few of its intervals means the scheduler is down or stuck. A job with no run at
all was never registered by a running scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cli.verify.model import Expected, Result, ago, fail, ok
from scout.db import q

CHECK = "scheduler jobs"


def jobs(conn: psycopg.Connection[Any], expected: Expected) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(q("verify_job_runs")).fetchall()
        now = cur.execute("SELECT now() AS now").fetchone()
    assert now is not None
    return judge_jobs(rows, now["now"], expected)


def allowed_age_s(interval_s: float, expected: Expected) -> float:
    """How long a job may go without activity before the scheduler counts as down."""
    return expected.job_missed_runs * interval_s + expected.job_grace_s


def judge_jobs(rows: Iterable[Mapping[str, Any]], now: datetime, expected: Expected) -> Result:
    last = {r["job_name"]: r for r in rows}
    never = [name for name in expected.job_intervals_s if name not in last]
    late: list[str] = []
    failed: list[str] = []
    for name, interval in expected.job_intervals_s.items():
        run = last.get(name)
        if run is None:
            continue
        activity = run["finished_at"] or run["started_at"]
        age = (now - activity).total_seconds()
        if age > allowed_age_s(interval, expected):
            late.append(f"{name} last ran {ago(age)} ago (every {interval:g} s)")
        elif run["status"] == "failed":
            failed.append(f"{name} failed: {(run['error'] or '')[:160]}")
    if late or never:
        causes = late + ([f"never ran: {', '.join(never)}"] if never else [])
        return fail(CHECK, f"scheduler down or stuck: {'; '.join(causes)}: start `scout scheduler` "
                           "(compose: the scheduler service) and check its log")
    if failed:
        return fail(CHECK, f"{'; '.join(failed)}: see `scout jobs list` and the scheduler log")
    return ok(CHECK, f"{len(expected.job_intervals_s)} jobs ran on schedule: "
                     f"{', '.join(sorted(expected.job_intervals_s))}")
