"""The Great Expectations suites (silver, gold) built from the rules' batch SQL, run with an ephemeral context.

Every rule's batch check becomes an ``UnexpectedRowsExpectation`` over the batch it names: the recent window
of silver transactions or of the quarantine, the gold refresh state, or a gold view. Nothing is written to
disk, analytics and progress bars are off; Great Expectations is imported only when a suite runs (~5 s).

Example::

    checks = plan_checks(limits, since=window_start, gold_views={"gold.sales_by_store_day"})
    results = run_checks(settings.database_dsn(), checks, since=window_start, sample_size=20)
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from quality.rules import RULES, Batch, Rule, Severity, Suite, Thresholds, batch_source_sql, batch_sql

log = logging.getLogger(__name__)

SUITES: tuple[Suite, ...] = ("silver", "gold")


@dataclass(frozen=True)
class Check:
    """One expectation: a rule (for one subject) with its SQL rendered for this run."""

    suite: Suite
    rule: Rule
    subject: str
    severity: Severity
    batch: Batch
    sql: str

    @property
    def name(self) -> str:
        return self.rule.name + (f"[{self.subject}]" if self.subject else "")


@dataclass(frozen=True)
class CheckResult:
    check: Check
    success: bool
    unexpected_count: int
    observed: str
    failing: list[dict[str, str]] = field(default_factory=list)  # a sample: [{"key": ..., "detail": ...}]
    error: str | None = None


def plan_checks(limits: Thresholds, *, since: datetime, gold_views: Iterable[str], suite: str | None = None,
                rules: Iterable[Rule] = RULES) -> list[Check]:
    """The checks of one suite (or all): per-view rules only for views that exist."""
    if suite is not None and suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}")
    present = set(gold_views)
    checks: list[Check] = []
    for rule in rules:
        if suite is not None and rule.suite != suite:
            continue
        for subject in rule.subjects or ("",):
            if subject and subject not in present:
                continue
            checks.append(Check(rule.suite, rule, subject, limits.severity(rule), rule.batch,
                                batch_sql(rule, limits, since=since, subject=subject)))
    return checks


def _sqlalchemy_url(dsn: str) -> str:
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError("the database URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _asset(source: Any, batch: Batch, subject: str, since: datetime) -> Any:
    # Query assets throughout: a table asset outside the connection's search_path needs schema_name,
    # which Great Expectations deprecates.
    return source.add_query_asset(subject or batch, query=batch_source_sql(batch, since=since, subject=subject))


def _error(info: Any) -> str | None:
    """The exception message of a result's exception_info (flat, or keyed by metric), if one was raised."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "error")[:2000]
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "error")[:2000]
    return None


def _result(check: Check, raw: Any, sample_size: int) -> CheckResult:
    error = _error(raw.exception_info)
    if error is not None:
        return CheckResult(check, False, 0, "error", [], error)
    outcome = raw.result or {}
    rows = (outcome.get("details") or {}).get("unexpected_rows") or []
    sample = [{"key": str(r.get("key")), "detail": str(r.get("detail"))} for r in rows[:sample_size]]
    if check.rule.aggregate:
        if not rows:
            return CheckResult(check, True, 0, "within bounds")
        return CheckResult(check, False, int(rows[0].get("unexpected") or 1), str(rows[0].get("detail")), sample)
    count = int(outcome.get("observed_value") or 0)
    return CheckResult(check, bool(raw.success), count, f"{count} unexpected row{'s' if count != 1 else ''}", sample)


def run_checks(dsn: str, checks: list[Check], *, since: datetime, sample_size: int = 20) -> list[CheckResult]:
    """Validate every check against PostgreSQL; a check whose query fails comes back with ``error`` set."""
    if not checks:
        return []
    import great_expectations as gx

    context = _context()
    source = context.data_sources.add_postgres("scout", connection_string=_sqlalchemy_url(dsn))
    groups: dict[tuple[Batch, str], list[int]] = defaultdict(list)
    for n, check in enumerate(checks):
        groups[(check.batch, check.subject if check.batch == "gold_view" else "")].append(n)
    results: dict[int, CheckResult] = {}
    try:
        for (batch, subject), members in groups.items():
            suite = context.suites.add(gx.ExpectationSuite(name=f"{batch}:{subject}"))
            for n in members:
                suite.add_expectation(gx.expectations.UnexpectedRowsExpectation(
                    unexpected_rows_query=checks[n].sql, description=checks[n].name, meta={"check": n}))
            try:
                data = _asset(source, batch, subject, since).add_batch_definition_whole_table("all").get_batch()
                outcome = data.validate(suite, result_format="COMPLETE")
            except Exception as exc:  # the batch itself failed: every check on it reports the error
                log.error("quality: batch %s %s failed: %r", batch, subject, exc)
                for n in members:
                    results[n] = CheckResult(checks[n], False, 0, "error", [], f"{type(exc).__name__}: {exc}"[:2000])
                continue
            for raw in outcome.results:
                n = int(raw.expectation_config.meta["check"])
                results[n] = _result(checks[n], raw, sample_size)
    finally:
        source.get_engine().dispose()
    return [results[n] for n in range(len(checks))]
