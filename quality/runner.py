"""Run the quality suites now: checks → history → alerts (one transaction) → Prometheus gauge → webhook.

What the ``quality-checks`` job and ``scout quality run`` call. One run at a time per database
(pg_try_advisory_lock): a second scheduler replica skips instead of counting every alert twice.

Example::

    with open_pool(settings, name="quality") as pool:
        report = run_quality(pool, settings, suite="gold")
        report.failed        # checks that found unexpected rows
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from psycopg_pool import ConnectionPool

from observability.metrics import QUALITY_CHECKS, QUALITY_RUN_SECONDS
from quality.alerts import AlertChanges, apply_results, export_active, resolve_orphans
from quality.history import SuiteRun, prune, record_run
from quality.rules import RULES, Thresholds
from quality.suites import SUITES, CheckResult, plan_checks, run_checks
from quality.webhook import Delivery, deliver_pending
from scout.db import q, try_advisory_lock
from scout.errors import ScoutError
from scout.settings import Settings

log = logging.getLogger(__name__)
LOCK_KEY = "scout.quality"


@dataclass
class QualityReport:
    runs: list[SuiteRun] = field(default_factory=list)
    alerts: AlertChanges = field(default_factory=AlertChanges)
    webhook: Delivery = "off"
    skipped: str | None = None  # why nothing ran (another run holds the lock)

    @property
    def results(self) -> list[CheckResult]:
        return [r for run in self.runs for r in run.results]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for run in self.runs for r in run.failed]

    @property
    def errors(self) -> list[CheckResult]:
        return [r for run in self.runs for r in run.errors]

    def summary(self) -> dict[str, object]:
        return {
            "skipped": self.skipped,
            "suites": {run.suite: {"checks": len(run.results), "failed": [r.check.name for r in run.failed],
                                   "errors": [r.check.name for r in run.errors], "ms": run.duration_ms}
                       for run in self.runs},
            "alerts": {"opened": self.alerts.opened, "updated": self.alerts.updated,
                       "resolved": self.alerts.resolved},
            "webhook": self.webhook,
        }


def _run_suites(pool: ConnectionPool, settings: Settings, limits: Thresholds, suites: tuple[str, ...],
                since: datetime) -> list[SuiteRun]:
    with pool.connection() as conn:
        gold_views = [str(r[0]) for r in conn.execute(q("gold_views_present")).fetchall()]
    runs = []
    for suite in suites:
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        checks = plan_checks(limits, since=since, gold_views=gold_views, suite=suite)
        results = run_checks(settings.database_dsn(), checks, since=since, sample_size=settings.quality_sample_size)
        QUALITY_RUN_SECONDS.labels(suite).observe(time.perf_counter() - t0)
        for r in results:
            QUALITY_CHECKS.labels(suite, "error" if r.error else ("passed" if r.success else "failed")).inc()
        runs.append(SuiteRun(suite, started, datetime.now(UTC), since, results))
    return runs


def run_quality(pool: ConnectionPool, settings: Settings, *, suite: str | None = None,
                since: datetime | None = None) -> QualityReport:
    """Run one suite (or all), record the history, update alerts, export them, notify the webhook.

    ``since`` is the start of the recent window of silver (default: now minus ``SCOUT_QUALITY_WINDOW_S``).
    """
    if suite is not None and suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}")
    limits = Thresholds.from_settings(settings)
    since = since or datetime.now(UTC) - timedelta(seconds=settings.quality_window_s)
    report = QualityReport()
    with pool.connection() as lock:
        lock.autocommit = True
        with try_advisory_lock(lock, LOCK_KEY) as mine:
            if not mine:
                report.skipped = "another quality run holds the lock"
                export_active(lock)  # this process's gauge still follows ops.alerts
                return report
            report.runs = _run_suites(pool, settings, limits, (suite,) if suite else SUITES, since)
            with pool.connection() as conn, conn.transaction():
                for run in report.runs:
                    record_run(conn, run)
                report.alerts = apply_results(conn, report.results, window_start=since)
                ran = {run.suite for run in report.runs}
                report.alerts.resolved += resolve_orphans(conn, report.results,
                                                          rules=[r.name for r in RULES if r.suite in ran])
                prune(conn, days=settings.quality_history_days)
            with pool.connection() as conn:
                export_active(conn)
    report.webhook = deliver_pending(pool, settings)  # after the commit; bounded; failures stay pending
    return report


class QualityChecksFailed(ScoutError):
    """Some checks could not run (their SQL or batch failed); the results that did run are recorded."""


def quality_job(pool: ConnectionPool, settings: Settings) -> dict[str, object]:
    """The ``quality-checks`` job: every suite; the run fails only when a check could not run."""
    report = run_quality(pool, settings)
    if report.errors:
        raise QualityChecksFailed(f"quality checks errored: {[(r.check.name, r.error) for r in report.errors]}")
    return report.summary()
