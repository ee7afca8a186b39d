"""Rule definitions are complete (predicate or batch SQL, a runbook section each), the batch SQL is ready for
Great Expectations, the webhook shapes are right, and the quality settings refuse bad values."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from string import Formatter
from typing import Any

import pytest
from pydantic import ValidationError

from quality.rules import GOLD_TOTALS, OVER_THRESHOLD, RULES, Thresholds, batch_source_sql, batch_sql
from quality.suites import plan_checks
from quality.webhook import ZERO_TIME, alertmanager_payload, deadline_s, json_payload
from scout.db import queries
from scout.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SINCE = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
LIMITS = Thresholds.from_settings(Settings())


def test_every_rule_has_its_batch_query_and_stream_rules_a_predicate() -> None:
    for rule in RULES:
        for subject in rule.subjects or ("",):
            assert rule.query_name(subject) in queries(), rule.name
        if rule.batch in ("silver_recent", "silver_recent_lines") and not rule.aggregate:
            assert rule.stream is not None, f"{rule.name}: a per-transaction silver rule needs its predicate"
    assert {r.name for r in RULES if r.stream is None} == {
        "conflicting_duplicate", "invalid_payload", "processing_error", "link_coverage", "fuzzy_link_share",
        "unknown_product", "orphan_rows",
        "gold_totals", "gold_freshness"}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_batch_sql_leaves_only_the_batch_placeholder(rule: Any) -> None:
    for subject in rule.subjects or ("",):
        sql = batch_sql(rule, LIMITS, since=SINCE, subject=subject)
        fields = {f for _, f, _, _ in Formatter().parse(sql) if f is not None}
        assert fields == {"batch"}, (rule.name, fields)
        assert "%" not in sql  # the SQL runs through SQLAlchemy's text(): no percent signs
        if "{since}" in queries()[rule.query_name(subject)]:
            assert "'2026-01-05T10:00:00+00:00'::timestamptz" in sql


def test_thresholds_are_written_into_the_sql() -> None:
    limits = Thresholds.from_settings(Settings(max_transaction_amount="2500", line_sum_tolerance=0.02))
    assert "t.total_amount > 2500" in batch_sql(OVER_THRESHOLD, limits, since=SINCE)
    assert "0.02 * abs(t.total_amount)" in batch_sql(RULES[4], limits, since=SINCE)
    assert "processed_at >= '2026-01-05T10:00:00+00:00'::timestamptz" in batch_source_sql("silver_recent", since=SINCE)
    lines = batch_source_sql("silver_recent_lines", since=SINCE)
    assert "t.processed_at >= '2026-01-05T10:00:00+00:00'::timestamptz" in lines and "{" not in lines
    assert "f.line_sum" in lines  # each transaction's lines read once for every line rule


def test_every_rule_has_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## ([a-z0-9-]+)\s*$", runbook, flags=re.MULTILINE))
    for rule in RULES:
        assert f"quality-{rule.name.replace('_', '-')}" in sections, rule.name
    for rule in RULES:
        body = runbook.split(f"## quality-{rule.name.replace('_', '-')}\n", 1)[1].split("\n## ", 1)[0]
        for part in ("**Means**", "**Check**", "**Fix**", "**Replay**"):
            assert part in body, (rule.name, part)


def test_checks_per_suite_and_per_existing_view() -> None:
    silver = plan_checks(LIMITS, since=SINCE, gold_views=[], suite="silver")
    assert {c.suite for c in silver} == {"silver"} and len(silver) == 13
    gold = plan_checks(LIMITS, since=SINCE, gold_views=["gold.sales_by_store_day", "gold.other"], suite="gold")
    assert [c.name for c in gold] == ["gold_totals[gold.sales_by_store_day]", "gold_freshness"]
    assert [c.name for c in plan_checks(LIMITS, since=SINCE, gold_views=[], suite="gold")] == ["gold_freshness"]
    assert GOLD_TOTALS.query_name("gold.sales_by_store_day") == "rule_gold_totals_sales_by_store_day"
    with pytest.raises(ValueError, match="unknown suite"):
        plan_checks(LIMITS, since=SINCE, gold_views=[], suite="platinum")
    warned = Thresholds.from_settings(Settings(quality_severities={"gold_totals": "warning"}))
    assert plan_checks(warned, since=SINCE, gold_views=["gold.sales_by_store_day"], suite="gold")[0].severity == \
        "warning"


def _alert(**overrides: Any) -> dict[str, Any]:
    alert = {"id": 7, "rule": "over_threshold", "subject": "", "severity": "critical", "message": "m",
             "details": {"failing_keys": [{"key": "S/T", "detail": "d"}]},
             "first_seen": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
             "last_seen": datetime(2026, 1, 5, 10, 5, tzinfo=UTC), "count": 3, "resolved_at": None}
    alert.update(overrides)
    return alert


def test_alertmanager_payload() -> None:
    resolved_at = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
    body = alertmanager_payload([_alert(), _alert(id=8, rule="gold_totals", subject="gold.v", resolved_at=resolved_at)])
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "scout")
    assert body["commonLabels"] == {"alertname": "ScoutQualityCheck", "service": "scout", "severity": "critical"}
    firing, ended = body["alerts"]
    assert firing["endsAt"] == ZERO_TIME and firing["startsAt"] == "2026-01-05T10:00:00+00:00"
    assert ended == {**ended, "status": "resolved", "endsAt": "2026-01-05T11:00:00+00:00"}
    assert ended["labels"]["subject"] == "gold.v" and "subject" not in firing["labels"]
    assert firing["annotations"]["runbook_url"] == "docs/RUNBOOK.md#quality-over-threshold"
    assert firing["fingerprint"] != ended["fingerprint"]
    assert alertmanager_payload([_alert(resolved_at=resolved_at)])["status"] == "resolved"


def test_json_payload() -> None:
    (alert,) = json_payload([_alert()])["alerts"]
    assert alert == {"id": 7, "rule": "over_threshold", "subject": "", "severity": "critical", "status": "firing",
                     "message": "m", "details": {"failing_keys": [{"key": "S/T", "detail": "d"}]},
                     "first_seen": "2026-01-05T10:00:00+00:00", "last_seen": "2026-01-05T10:05:00+00:00",
                     "count": 3, "resolved_at": None}


def test_quality_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_QUALITY_SEVERITIES", '{"over_threshold": "warning"}')
    monkeypatch.setenv("SCOUT_ALERT_WEBHOOK_URL", "https://hooks.example/x?token=secret")
    settings = Settings()
    assert Thresholds.from_settings(settings).severity(OVER_THRESHOLD) == "warning"
    assert "secret" not in repr(settings)
    monkeypatch.setenv("SCOUT_ALERT_WEBHOOK_URL", "")
    assert Settings().alert_webhook_url is None  # an empty variable turns the webhook off
    monkeypatch.setenv("SCOUT_ALERT_WEBHOOK_URL", "ftp://x")
    with pytest.raises(ValidationError, match="alert_webhook_url"):
        Settings()
    monkeypatch.delenv("SCOUT_ALERT_WEBHOOK_URL")
    monkeypatch.setenv("SCOUT_QUALITY_SEVERITIES", '{"over_threshold": "ignore"}')
    with pytest.raises(ValidationError, match="quality_severities"):
        Settings()


def test_the_webhook_deadline_covers_every_attempt_and_backoff() -> None:
    settings = Settings(alert_webhook_timeout_s=1, alert_webhook_attempts=3)
    assert deadline_s(settings) == 3 * 1 + (0.5 + 1) + 1
