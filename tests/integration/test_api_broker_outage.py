"""A broker of this test's own is stopped under the API: 503 + Retry-After and nothing reaches the topic;
restarted with its data: the very same requests succeed and every event is on the topic exactly once."""

from __future__ import annotations

import time
from collections import Counter

import httpx
from fastapi.testclient import TestClient

from cli.services.kafka import ApacheKafka
from ingest_api.app import create_app
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.workers import api_process
from tests.factories import bearer, topic_messages, tx_dict


def _hashes(settings: Settings) -> Counter[str]:
    return Counter(m["event_hash"] for _, m in topic_messages(settings))


def test_broker_down_is_503_and_nothing_lands_then_the_same_requests_succeed(
        settings: Settings, own_broker: ApacheKafka) -> None:
    settings = settings.model_copy(update={"kafka_bootstrap": own_broker.bootstrap, "produce_timeout_s": 2.0,
                                           "retry_after_s": 3})
    ensure_topics(settings)
    single, batch = tx_dict(2), [tx_dict(3), tx_dict(4)]
    with TestClient(create_app(settings), headers=bearer(settings.database_dsn())) as client:
        before = client.post("/v1/transactions", json=tx_dict(1))
        assert before.status_code == 202, before.text

        own_broker.stop()
        down = client.post("/v1/transactions", json=single, headers={"Idempotency-Key": "outage-1"})
        down_batch = client.post("/v1/transactions:batch", json=batch)
        not_ready = client.get("/readyz")
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "3"
        assert down.json()["error"]["code"] == "kafka_unavailable"
        assert down_batch.status_code == 503 and down_batch.headers["retry-after"] == "3"
        assert not_ready.status_code == 503 and not_ready.json()["checks"]["kafka"] == "unreachable"

        own_broker.start(keep_data=True)
        eventually(lambda: client.get("/readyz").status_code, until=lambda s: s == 200, timeout=60,
                   what="the API to reconnect to the restarted broker")
        # nothing that was answered 503 reached the topic, not even later
        assert _hashes(settings) == Counter({before.json()["event_hash"]: 1})

        again = _retry(lambda: client.post("/v1/transactions", json=single, headers={"Idempotency-Key": "outage-1"}))
        again_batch = _retry(lambda: client.post("/v1/transactions:batch", json=batch))
    assert again.status_code == 202 and again.json()["duplicate"] is False
    assert [r["status"] for r in again_batch.json()["results"]] == ["accepted", "accepted"]
    expected = [before.json()["event_hash"], again.json()["event_hash"],
                *(r["event_hash"] for r in again_batch.json()["results"])]
    assert _hashes(settings) == Counter(expected)  # each exactly once


def _retry(post: object) -> httpx.Response:
    """Resend while the answer is 503, as a device honouring Retry-After would (bounded by a deadline)."""
    return eventually(post, until=lambda r: r.status_code != 503, timeout=60,  # type: ignore[arg-type]
                      what="the request to be accepted after the broker came back", interval=0.5)


def test_an_outage_reads_as_a_few_log_lines_with_counts(settings: Settings, own_broker: ApacheKafka) -> None:
    """`scout api` as a process through a 15 s outage under traffic: aiokafka's connection errors are summarised
    (the first of a kind, then how many more), and no stray traceback or never-retrieved future is logged."""
    settings = settings.model_copy(update={"kafka_bootstrap": own_broker.bootstrap, "produce_timeout_s": 1.0})
    with api_process(settings) as (url, _, children):
        headers = bearer(settings.database_dsn())
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            assert client.post("/v1/transactions", json=tx_dict(1)).status_code == 202
            own_broker.stop()
            outage_started, n, answers = time.monotonic(), 2, Counter[int]()
            while time.monotonic() - outage_started < 15:  # bounded traffic through the outage
                answers[client.post("/v1/transactions", json=tx_dict(n)).status_code] += 1
                answers[client.get("/readyz").status_code] += 1
                n += 1
            own_broker.start(keep_data=True)
            eventually(lambda: client.get("/readyz").status_code, until=lambda s: s == 200, timeout=60,
                       what="the API ready again")
            assert _retry(lambda: client.post("/v1/transactions", json=tx_dict(n))).status_code == 202
        assert answers[503] > 0
        log = children.running[0].log.read_text(errors="replace")
    problems = [line for line in log.splitlines() if " ERROR " in line or " WARNING " in line or " CRITICAL " in line]
    assert "Traceback" not in log and "never retrieved" not in log, log[-5000:]
    assert len(problems) <= 40, f"{len(problems)} error/warning lines:\n" + "\n".join(problems[:60])
    assert any("more in the last" in line for line in problems), "\n".join(problems[:60])
