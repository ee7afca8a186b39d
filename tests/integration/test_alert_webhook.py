"""The alert webhook against local HTTP servers on 127.0.0.1: it receives openings and resolutions in the
Alertmanager and plain JSON shapes; a refused port, a server that never answers and one that trickles forever
cost the quality job no more than the webhook deadline, and undelivered changes are sent on a later run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from cli.services import free_port
from quality.runner import run_quality
from quality.webhook import deadline_s, deliver_pending
from tests.factories import tx_dict
from tests.integration.quality_support import breaking, feed, pool, quality_settings, rows
from tests.receiver import Receiver

WINDOW = timedelta(minutes=5)


def test_alertmanager_shape_on_open_and_resolve_not_on_repeat(database: str) -> None:
    since = datetime.now(UTC) - WINDOW
    with Receiver("error").running() as hook, pool(database) as p:
        settings = quality_settings(database, alert_webhook_url=hook.url)
        feed(database, [breaking(1, "over_threshold")], settings)
        assert run_quality(p, settings, suite="silver", since=since).webhook == "sent"  # after one 500
        assert run_quality(p, settings, suite="silver", since=since).webhook == "nothing"  # a repeat: quiet
        feed(database, [tx_dict(2)], settings, offset=10)
        assert run_quality(p, settings, suite="silver", since=datetime.now(UTC)).webhook == "sent"
    assert hook.requests == 3
    opened, resolved = hook.bodies
    assert (opened["version"], opened["status"], resolved["status"]) == ("4", "firing", "resolved")
    (alert,) = opened["alerts"]
    assert alert["labels"] == {"alertname": "ScoutQualityCheck", "service": "scout", "rule": "over_threshold",
                               "severity": "critical"}
    assert alert["annotations"]["runbook_url"] == "docs/RUNBOOK.md#quality-over-threshold"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z" and alert["startsAt"]
    assert opened["commonLabels"]["rule"] == "over_threshold"
    (ended,) = resolved["alerts"]
    assert ended["status"] == "resolved" and ended["endsAt"] != "0001-01-01T00:00:00Z"
    assert ended["fingerprint"] == alert["fingerprint"]
    assert rows(database, "SELECT notified_status FROM ops.alerts") == [("resolved",)]


def test_plain_json_shape(database: str) -> None:
    with Receiver().running() as hook, pool(database) as p:
        settings = quality_settings(database, alert_webhook_url=hook.url, alert_webhook_format="json")
        feed(database, [breaking(1, "line_sum_mismatch")], settings)
        run_quality(p, settings, suite="silver", since=datetime.now(UTC) - WINDOW)
    ((alert,),) = [body["alerts"] for body in hook.bodies]
    assert (alert["rule"], alert["severity"], alert["status"], alert["count"]) == (
        "line_sum_mismatch", "critical", "firing", 1)
    assert alert["details"]["failing_keys"][0]["key"] == "STORE-001/TXN-000001"


def test_a_refused_port_does_not_stall_the_job_and_is_retried_next_run(database: str) -> None:
    dead = quality_settings(database, alert_webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    since = datetime.now(UTC) - WINDOW
    feed(database, [breaking(1, "over_threshold")], dead)
    with pool(database) as p:
        report = run_quality(p, dead, suite="silver", since=since)
        assert report.webhook == "failed" and report.alerts.opened == ["over_threshold"]
        assert rows(database, "SELECT notified_status FROM ops.alerts") == [(None,)]  # still pending
        started = time.monotonic()
        assert deliver_pending(p, dead) == "failed"
        assert time.monotonic() - started < deadline_s(dead)
        with Receiver().running() as hook:
            alive = quality_settings(database, alert_webhook_url=hook.url)
            assert run_quality(p, alive, suite="silver", since=since).webhook == "sent"
    assert [a["labels"]["rule"] for body in hook.bodies for a in body["alerts"]] == ["over_threshold"]


def test_a_server_that_never_answers_costs_at_most_the_deadline(database: str) -> None:
    with Receiver("hang").running() as hook, pool(database) as p:
        settings = quality_settings(database, alert_webhook_url=hook.url)
        feed(database, [breaking(1, "over_threshold")], settings)
        report = run_quality(p, settings, suite="silver", since=datetime.now(UTC) - WINDOW)
        assert report.webhook == "failed" and report.alerts.opened == ["over_threshold"]
        started = time.monotonic()
        assert deliver_pending(p, settings) == "failed"  # two attempts, each cut by the 0.5 s timeout
        assert time.monotonic() - started < deadline_s(settings)
        assert hook.requests == 4


def test_a_trickling_server_is_abandoned_at_the_deadline(database: str) -> None:
    with Receiver("trickle").running() as hook, pool(database) as p:
        settings = quality_settings(database, alert_webhook_url=hook.url)
        feed(database, [breaking(1, "over_threshold")], settings)
        run_quality(p, settings, suite="silver", since=datetime.now(UTC) - WINDOW)
        started = time.monotonic()
        assert deliver_pending(p, settings) == "abandoned"
        elapsed = time.monotonic() - started
    assert deadline_s(settings) <= elapsed < deadline_s(settings) + 1
    assert rows(database, "SELECT notified_status FROM ops.alerts") == [(None,)]
