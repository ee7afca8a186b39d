"""Quality check history in ops: one ops.quality_runs row per suite run, one ops.quality_results row per check.

Example::

    run_id = record_run(conn, run)        # inside the caller's transaction
    prune(conn, days=30)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from quality.suites import CheckResult
from scout.db import q


@dataclass(frozen=True)
class SuiteRun:
    suite: str
    started_at: datetime
    finished_at: datetime
    window_start: datetime
    results: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.error is None]

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if r.error is not None]

    @property
    def duration_ms(self) -> int:
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


def record_run(conn: psycopg.Connection, run: SuiteRun) -> int:
    row = conn.execute(q("quality_run_insert"), {
        "suite": run.suite, "started_at": run.started_at, "finished_at": run.finished_at,
        "window_start": run.window_start, "success": not run.failed and not run.errors,
        "checks": len(run.results), "failed": len(run.failed), "errors": len(run.errors),
        "duration_ms": run.duration_ms,
    }).fetchone()
    assert row is not None
    run_id = int(row[0])
    with conn.cursor() as cur:
        cur.executemany(q("quality_result_insert"), [
            {"run_id": run_id, "expectation": r.check.name, "rule": r.check.rule.name, "subject": r.check.subject,
             "severity": r.check.severity, "success": r.success, "observed_value": r.observed,
             "unexpected_count": r.unexpected_count, "failing_keys": Jsonb(r.failing), "error": r.error}
            for r in run.results
        ])
    return run_id


def prune(conn: psycopg.Connection, *, days: int) -> None:
    """Drop runs (and their results) and resolved alerts older than ``days``."""
    conn.execute(q("quality_prune"), {"days": days})
