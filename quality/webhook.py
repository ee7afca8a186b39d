"""Alert webhook: POST alert changes (opened, resolved, still firing after the repeat interval) after commit.

Two shapes (``SCOUT_ALERT_WEBHOOK_FORMAT``): ``alertmanager`` is Alertmanager's webhook payload (version 4),
so anything that receives Alertmanager notifications can take Scout's; ``json`` is a plain list of alerts.
Delivery runs in a daemon thread with a per-attempt timeout, a few retries with backoff, and a hard deadline
for the caller: a dead or hanging receiver costs the quality job at most that deadline, and what was not
delivered stays pending in ops.alerts (``notified_status``) for the next run.

Example::

    outcome = deliver_pending(pool, settings)     # "sent", "failed", "abandoned", "nothing" or "off"
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, Literal

import httpx
import orjson
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from observability.metrics import ALERT_WEBHOOK
from quality.alerts import runbook_anchor
from scout.db import q
from scout.settings import Settings

log = logging.getLogger(__name__)

Delivery = Literal["sent", "failed", "abandoned", "nothing", "off"]
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end" for a firing alert


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _status(alert: dict[str, Any]) -> str:
    return "firing" if alert["resolved_at"] is None else "resolved"


def _labels(alert: dict[str, Any]) -> dict[str, str]:
    labels = {"alertname": "ScoutQualityCheck", "service": "scout", "rule": alert["rule"],
              "severity": alert["severity"]}
    if alert["subject"]:
        labels["subject"] = alert["subject"]
    return labels


def alertmanager_payload(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    label_sets: list[set[tuple[str, str]]] = []
    for alert in alerts:
        labels = _labels(alert)
        label_sets.append(set(labels.items()))
        items.append({
            "status": _status(alert),
            "labels": labels,
            "annotations": {"summary": alert["message"], "runbook_url": runbook_anchor(alert["rule"]),
                            "description": f"seen {alert['count']} time(s) since {_iso(alert['first_seen'])}"},
            "startsAt": _iso(alert["first_seen"]),
            "endsAt": _iso(alert["resolved_at"]) or ZERO_TIME,
            "generatorURL": "",
            "fingerprint": hashlib.sha256(f"{alert['rule']}\0{alert['subject']}".encode()).hexdigest()[:16],
        })
    common = set.intersection(*label_sets) if label_sets else set()
    return {
        "version": "4",
        "groupKey": '{}:{alertname="ScoutQualityCheck"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
        "receiver": "scout",
        "groupLabels": {"alertname": "ScoutQualityCheck"},
        "commonLabels": dict(sorted(common)),
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": items,
    }


def json_payload(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"source": "scout", "alerts": [
        {"id": a["id"], "rule": a["rule"], "subject": a["subject"], "severity": a["severity"], "status": _status(a),
         "message": a["message"], "details": a["details"], "first_seen": _iso(a["first_seen"]),
         "last_seen": _iso(a["last_seen"]), "count": a["count"], "resolved_at": _iso(a["resolved_at"])}
        for a in alerts
    ]}


def _retryable(exc: Exception | None, status: int | None) -> bool:
    return exc is not None or status in (408, 429) or (status is not None and status >= 500)


def post(url: str, body: bytes, *, timeout_s: float, attempts: int) -> bool:
    """POST with retries (connection errors, timeouts, 408/429/5xx); True when a 2xx came back."""
    with httpx.Client(timeout=httpx.Timeout(timeout_s)) as client:
        for attempt in range(attempts):
            exc: Exception | None = None
            status: int | None = None
            try:
                status = client.post(url, content=body, headers={"content-type": "application/json"}).status_code
            except httpx.HTTPError as error:
                exc = error
            if status is not None and 200 <= status < 300:
                return True
            log.warning("alert webhook: attempt %d/%d failed: %s", attempt + 1, attempts, exc or f"HTTP {status}")
            if not _retryable(exc, status) or attempt + 1 == attempts:
                return False
            time.sleep(backoff(attempt))
    return False


def backoff(attempt: int) -> float:
    return float(min(0.5 * 2**attempt, 4.0))


def deadline_s(settings: Settings) -> float:
    """The longest a delivery can hold up its caller: every attempt timing out, plus the backoffs."""
    attempts = settings.alert_webhook_attempts
    return attempts * settings.alert_webhook_timeout_s + sum(backoff(n) for n in range(attempts - 1)) + 1.0


def _send_in_background(url: str, body: bytes, settings: Settings) -> bool | None:
    """None when the deadline passed first (the thread is left to finish on its own)."""
    outcome: list[bool] = []
    thread = threading.Thread(
        target=lambda: outcome.append(post(url, body, timeout_s=settings.alert_webhook_timeout_s,
                                           attempts=settings.alert_webhook_attempts)),
        name="scout-alert-webhook", daemon=True,
    )
    thread.start()
    thread.join(deadline_s(settings))
    return outcome[0] if outcome else None


def deliver_pending(pool: ConnectionPool, settings: Settings) -> Delivery:
    """Send every pending alert change in one POST; mark them delivered only after a 2xx."""
    if settings.alert_webhook_url is None:
        return "off"
    with pool.connection() as conn:
        conn.autocommit = True
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(q("alerts_to_notify"), {"repeat_s": settings.alert_webhook_repeat_s})
            alerts = cur.fetchall()
    if not alerts:
        return "nothing"
    shape = alertmanager_payload if settings.alert_webhook_format == "alertmanager" else json_payload
    body = orjson.dumps(shape(alerts))
    sent = _send_in_background(settings.alert_webhook_url.get_secret_value(), body, settings)
    outcome: Delivery = "sent" if sent else ("abandoned" if sent is None else "failed")
    ALERT_WEBHOOK.labels(outcome).inc()
    if sent:
        with pool.connection() as conn:
            conn.autocommit = True
            conn.execute(q("alerts_mark_notified"),
                         {"ids": [a["id"] for a in alerts], "statuses": [_status(a) for a in alerts]})
    else:
        log.error("alert webhook: %d alert change(s) not delivered (%s); they stay pending for the next run",
                  len(alerts), outcome)
    return outcome
