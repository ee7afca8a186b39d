"""Every alert rule has a promtool unit test that makes it fire, and the ones on-call needs exist.
(promtool itself runs in tests/unit/test_deployment_files.py.)"""

from __future__ import annotations

import re

from tests.unit.test_deployment_files import PROMETHEUS_DIR, alert_rules, load_yaml

# What on-call must be told about, by the metric each alert reads.
REQUIRED = {
    "ScoutIngestServerErrors": "scout_http_requests_total",
    "ScoutIngestUnavailable": "scout_ingest_requests_total",
    "ScoutIngestRejectionRate": "scout_ingest_requests_total",
    "ScoutConsumerLagHigh": "scout_consumer_lag_messages",
    "ScoutBronzeToSilverSlow": "scout_bronze_to_silver_seconds_bucket",
    "ScoutGoldRefreshStale": "scout_gold_last_refresh_timestamp_seconds",
    "ScoutQuarantineRateHigh": "scout_stage_rows_total",
    "ScoutQualityCriticalAlert": "scout_alerts_active",
    "ScoutProcessDown": "up",
}


def _tested() -> tuple[set[str], set[str]]:
    """Alert names some promtool test expects to fire, and names some test expects silent."""
    firing: set[str] = set()
    silent: set[str] = set()
    for path in sorted((PROMETHEUS_DIR / "tests").glob("*.yml")):
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    return firing, silent


def test_the_alerts_on_call_needs_exist() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for name, metric in REQUIRED.items():
        assert name in rules, name
        assert re.search(rf"\b{metric}\b", rules[name]["expr"]), (name, rules[name]["expr"])


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing, silent = _tested()
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "no promtool test makes these fire"
    assert names - silent == set(), "no promtool test shows these quiet"
