"""The always-on UAT feed over the API: admin only; start publishes simulated events (source simulator) at a
rate, faults that break the contract are counted as rejected, stop ends it, status reports the counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens


@pytest.fixture
def setup() -> Iterator[tuple[TestClient, FakePublisher, FakeTokens]]:
    publisher, tokens = FakePublisher(), FakeTokens()
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None)
    app = create_app(settings, publisher=publisher, tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client, publisher, tokens


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_feed_needs_the_admin_scope(setup: tuple[TestClient, FakePublisher, FakeTokens]) -> None:
    client, _, tokens = setup
    read = _auth(tokens.add(scopes=("read", "ingest")))
    assert client.get("/v1/simulator/status", headers=read).status_code == 403
    assert client.post("/v1/simulator/start", json={}, headers=read).status_code == 403
    assert client.get("/v1/simulator/status").status_code == 401


def test_start_publishes_until_stopped_and_counts_rejected_faults(
        setup: tuple[TestClient, FakePublisher, FakeTokens]) -> None:
    client, publisher, tokens = setup
    admin = _auth(tokens.add(scopes=("admin",)))
    started = client.post("/v1/simulator/start", headers=admin,
                          json={"rate": 200, "seed": 3, "faults": "missing_field=0.2"})
    assert started.status_code == 202 and started.json()["running"] is True
    assert client.post("/v1/simulator/start", headers=admin, json={}).status_code == 409
    status = eventually(lambda: client.get("/v1/simulator/status", headers=admin).json(),
                        until=lambda s: s["transactions"] >= 100, timeout=20, what="100 simulated transactions")
    assert status["running"] and status["params"]["seed"] == 3
    stopped = client.post("/v1/simulator/stop", headers=admin).json()
    assert stopped["running"] is False and stopped["errors"] == 0
    assert stopped["published"] + stopped["rejected"] == stopped["transactions"]
    assert 0 < stopped["rejected"] < stopped["transactions"] / 2
    assert len(publisher.published) == stopped["published"]
    assert {e.source for e in publisher.published} == {"simulator"}
    assert client.post("/v1/simulator/stop", headers=admin).status_code == 409


def test_a_bad_fault_plan_is_refused_and_a_down_broker_is_counted(
        setup: tuple[TestClient, FakePublisher, FakeTokens]) -> None:
    client, publisher, tokens = setup
    admin = _auth(tokens.add(scopes=("admin",)))
    bad = client.post("/v1/simulator/start", headers=admin, json={"faults": "nonsense=0.5"})
    assert bad.status_code == 422 and "nonsense" in bad.text
    assert client.post("/v1/simulator/start", headers=admin, json={"rate": 0}).status_code == 422
    publisher.down = True
    assert client.post("/v1/simulator/start", headers=admin, json={"rate": 100, "duration_s": 60}).status_code == 202
    status = eventually(lambda: client.get("/v1/simulator/status", headers=admin).json(),
                        until=lambda s: s["errors"] >= 5, timeout=20, what="publish errors counted")
    assert status["published"] == 0 and "did not acknowledge" in status["last_error"]
    assert client.post("/v1/simulator/stop", headers=admin).status_code == 200


def test_the_feed_is_stamped_with_the_current_time_and_runs_at_real_time(
        setup: tuple[TestClient, FakePublisher, FakeTokens]) -> None:
    client, publisher, tokens = setup
    admin = _auth(tokens.add(scopes=("admin",)))
    before = datetime.now(UTC)
    assert client.post("/v1/simulator/start", headers=admin, json={"rate": 50, "seed": 5}).status_code == 202
    eventually(lambda: len(publisher.published), until=lambda n: n >= 50, timeout=20, what="50 published")
    client.post("/v1/simulator/stop", headers=admin)
    after = datetime.now(UTC)
    stamps = sorted(e.transaction.ts for e in publisher.published)
    assert before - timedelta(seconds=1) <= stamps[0] <= stamps[-1] <= after + timedelta(seconds=1)
    # 50 a second for about a second: the clock moved about a second, not a simulated day's worth of minutes
    assert stamps[-1] - stamps[0] < (after - before) + timedelta(seconds=1)


def test_the_simulated_clock_stays_available(setup: tuple[TestClient, FakePublisher, FakeTokens]) -> None:
    client, publisher, tokens = setup
    admin = _auth(tokens.add(scopes=("admin",)))
    started = client.post("/v1/simulator/start", headers=admin, json={"rate": 200, "seed": 5, "clock": "simulated"})
    assert started.status_code == 202
    eventually(lambda: len(publisher.published), until=lambda n: n >= 10, timeout=20, what="10 published")
    client.post("/v1/simulator/stop", headers=admin)
    first = min(e.transaction.ts for e in publisher.published)
    assert first.date() == date(2026, 1, 5)
    assert [e.transaction.ts for e in publisher.published[:10]] == [
        Generator(5).timestamp(n) for n in range(10)]
