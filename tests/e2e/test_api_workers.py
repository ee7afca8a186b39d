"""`scout api --workers 2` as a user runs it: /metrics/ reports the sum over both workers (prometheus_client
multiprocess mode), and `scout tokens revoke` refuses the token in every worker within a second, though each
keeps the tokens it saw in memory — also after its change listener's connection was killed."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from cli.processes import Children, child_env
from cli.services import free_port
from ingest_api.token_cache import APPLICATION_NAME
from ingest_api.tokens import revoke_token
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token


@dataclass(frozen=True)
class Api:
    url: str
    env: dict[str, str]
    metrics_dir: Path


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    ensure_topics(settings)
    port = free_port()
    env = child_env(database_url=settings.database_dsn(), kafka_bootstrap=settings.kafka_bootstrap,
                    topic=settings.topic, dead_letter_topic=settings.dead_letter_topic, api_port=str(port),
                    data_dir=str(settings.data_dir), auth_failure_burst="1000")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    metrics_dir = settings.data_dir.absolute() / "metrics" / "api"  # `scout api --workers N` picks it by default
    children = Children(env, settings.data_dir / "logs")
    children.start("api", "api", "--workers", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_api_ready(url)
        yield Api(url, env, metrics_dir)
    finally:
        stop_and_show_logs(children)



async def _post_timed(url: str, token: str, bodies: list[dict[str, object]]) -> list[tuple[float, int]]:
    """Every request on a new connection, so the kernel spreads them over the workers: (sent at, status)."""
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers, limits=limits) as client:

        async def one(body: dict[str, object]) -> tuple[float, int]:
            sent = time.monotonic()
            return sent, (await client.post("/v1/transactions", json=body)).status_code

        return await asyncio.gather(*(one(b) for b in bodies))


async def _post(url: str, token: str, bodies: list[dict[str, object]]) -> list[int]:
    return [status for _, status in await _post_timed(url, token, bodies)]


def _scrape(url: str, name: str, labels: dict[str, str]) -> float:
    text = httpx.get(f"{url}/metrics/", headers={"Connection": "close"}, timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _per_worker(metrics_dir: Path, name: str, labels: dict[str, str]) -> dict[str, float]:
    """Read each worker's own counter file: who served what."""
    per_pid: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = re.sub(r"\D", "", path.stem)
        for metric in MultiProcessCollector.merge([str(path)], accumulate=True):
            for sample in metric.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    per_pid[pid] = per_pid.get(pid, 0) + sample.value
    return per_pid


def _accepted_per_worker(metrics_dir: Path) -> dict[str, float]:
    return _per_worker(metrics_dir, "scout_ingest_requests_total", {"outcome": "accepted"})


def _wait_listening(api: Api) -> None:
    """Both workers listen for token changes (their token caches are in use)."""
    eventually(lambda: _scrape(api.url, "scout_token_listener_up", {}), until=lambda up: up == 2, timeout=30,
               what="both workers' token listeners")


def _refused_within_a_second(api: Api, token: str, gen: Generator, first: int, revoke: Callable[[], None]) -> int:
    """Revoke, then post rounds of 20 until every worker has refused the token: no request sent 1 s or more
    after the revocation committed was accepted, and the first round already sent after that second was
    refused in full. Returns the next unused body number."""
    workers = set(_accepted_per_worker(api.metrics_dir))
    refused_before = _per_worker(api.metrics_dir, "scout_auth_failures_total", {"reason": "revoked"})
    revoke()
    revoked_at = time.monotonic()
    used = first
    answers: list[tuple[float, int]] = []

    def one_round() -> tuple[list[int], dict[str, float]]:
        nonlocal used
        timed = asyncio.run(_post_timed(api.url, token, [gen.transaction(n) for n in range(used, used + 20)]))
        used += 20
        answers.extend((sent - revoked_at, status) for sent, status in timed)
        return ([status for _, status in timed],
                _per_worker(api.metrics_dir, "scout_auth_failures_total", {"reason": "revoked"}))

    eventually(one_round, timeout=30, interval=0.05, what="every worker to refuse the revoked token",
               until=lambda r: r[0] == [401] * 20 and all(r[1].get(w, 0) > refused_before.get(w, 0) for w in workers)
               and max(after for after, _ in answers) >= 1.0)
    late = [(round(after, 3), status) for after, status in answers if after >= 1.0 and status != 401]
    assert not late, late
    return used


def test_metrics_sum_over_workers_and_revocation_reaches_every_worker(api: Api) -> None:
    token_id, token = cli_token(api.env, "--name", "two-worker device", "--all-stores", "--rate-limit", "100000")
    gen = Generator(seed=11)
    sent = 0

    def post_round() -> dict[str, float]:
        nonlocal sent
        statuses = asyncio.run(_post(api.url, token, [gen.transaction(n) for n in range(sent, sent + 50)]))
        assert statuses == [202] * 50, statuses
        sent += 50
        return _accepted_per_worker(api.metrics_dir)

    served = eventually(post_round, until=lambda per_pid: sum(v > 0 for v in per_pid.values()) >= 2,
                        timeout=120, what="both workers to serve requests")
    assert sum(served.values()) == sent
    for _ in range(6):  # whichever worker answers the scrape, it reports both
        assert _scrape(api.url, "scout_ingest_requests_total", {"outcome": "accepted"}) == sent
        assert _scrape(api.url, "scout_http_requests_total",
                       {"route": "/v1/transactions", "method": "POST", "status": "202"}) == sent
    assert _scrape(api.url, "scout_produce_seconds_count", {}) == sent
    assert _scrape(api.url, "scout_http_requests_in_flight", {}) == 1  # the scrape itself

    def revoke() -> None:
        revoked = subprocess.run([sys.executable, "-m", "cli.main", "tokens", "revoke", str(token_id)],
                                 env=api.env, capture_output=True, text=True, timeout=60, check=False)
        assert revoked.returncode == 0, revoked.stderr

    _wait_listening(api)
    post_round()  # both workers have the token in memory now
    _refused_within_a_second(api, token, gen, sent, revoke)
    listed = subprocess.run([sys.executable, "-m", "cli.main", "tokens", "list", "--json"], env=api.env,
                            capture_output=True, text=True, timeout=60, check=False)
    (row,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["name"], row["scopes"]) == (token_id, "two-worker device", ["ingest"])
    assert row["store_ids"] is None
    assert row["revoked_at"] and row["last_used_at"] and token[:12] == row["token_prefix"]
    assert token not in listed.stdout


def test_revocation_reaches_every_worker_after_its_token_listener_was_killed(api: Api, settings: Settings) -> None:
    """Killing the listener's connection (pg_terminate_backend): until it is back the worker reads its token
    per request; back, it starts over with an empty cache. A revocation is refused within 1 s either way."""
    dsn = settings.database_dsn()
    gen = Generator(seed=12)
    used = 0
    tokens = [cli_token(api.env, "--name", f"device {n}", "--all-stores", "--rate-limit", "100000") for n in range(2)]

    def serve_on_both_workers(token: str) -> None:
        nonlocal used
        before = _accepted_per_worker(api.metrics_dir)

        def post_round() -> dict[str, float]:
            nonlocal used
            statuses = asyncio.run(_post(api.url, token, [gen.transaction(n) for n in range(used, used + 40)]))
            used += 40
            assert statuses == [202] * 40, statuses
            return _accepted_per_worker(api.metrics_dir)

        eventually(post_round, timeout=60, what="both workers to serve the token",
                   until=lambda now: sum(now[p] > before.get(p, 0) for p in now) >= 2)

    def kill_listeners() -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND application_name = %s",
                               [APPLICATION_NAME]).fetchone()
        assert row is not None
        return int(row[0])

    _wait_listening(api)
    for _, token in tokens:
        serve_on_both_workers(token)
    assert kill_listeners() == 2
    # Revoked while the listeners are down or reconnecting: the workers read their tokens per request.
    used = _refused_within_a_second(api, tokens[0][1], gen, used,
                                    lambda: assert_revoked(revoke_token(dsn, tokens[0][0])))
    # Back: the listeners reconnected, the caches fill again and a revocation still reaches both at once.
    _wait_listening(api)
    serve_on_both_workers(tokens[1][1])
    _refused_within_a_second(api, tokens[1][1], gen, used, lambda: assert_revoked(revoke_token(dsn, tokens[1][0])))


def assert_revoked(done: bool) -> None:
    assert done
