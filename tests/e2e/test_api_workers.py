"""`scout api --workers 2` as a user runs it: /metrics/ reports the sum over both workers (prometheus_client
multiprocess mode), and `scout tokens revoke` refuses the token in every worker at once."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from scout.cli.processes import Children, child_env
from scout.kafka import ensure_topics
from scout.services import free_port
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
                    data_dir=str(settings.data_dir))
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



async def _post(url: str, token: str, bodies: list[dict[str, object]]) -> list[int]:
    """Every request on a new connection, so the kernel spreads them over the workers."""
    limit = asyncio.Semaphore(16)
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}

    async def one(body: dict[str, object]) -> int:
        async with limit, httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
            return (await client.post("/v1/transactions", json=body)).status_code

    return await asyncio.gather(*(one(b) for b in bodies))


def _scrape(url: str, name: str, labels: dict[str, str]) -> float:
    text = httpx.get(f"{url}/metrics/", headers={"Connection": "close"}, timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _accepted_per_worker(metrics_dir: Path) -> dict[str, float]:
    """Read each worker's own counter file: who served what."""
    per_pid: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = re.sub(r"\D", "", path.stem)
        for metric in MultiProcessCollector.merge([str(path)], accumulate=True):
            for sample in metric.samples:
                if sample.name == "scout_ingest_requests_total" and sample.labels.get("outcome") == "accepted":
                    per_pid[pid] = per_pid.get(pid, 0) + sample.value
    return per_pid


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

    revoked = subprocess.run([sys.executable, "-m", "scout.cli.main", "tokens", "revoke", str(token_id)],
                             env=api.env, capture_output=True, text=True, timeout=60, check=False)
    assert revoked.returncode == 0, revoked.stderr
    statuses = asyncio.run(_post(api.url, token, [gen.transaction(n) for n in range(sent, sent + 20)]))
    assert statuses == [401] * 20
    listed = subprocess.run([sys.executable, "-m", "scout.cli.main", "tokens", "list", "--json"], env=api.env,
                            capture_output=True, text=True, timeout=60, check=False)
    (row,) = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["name"], row["scopes"]) == (token_id, "two-worker device", ["ingest"])
    assert row["store_ids"] is None
    assert row["revoked_at"] and row["last_used_at"] and token[:12] == row["token_prefix"]
    assert token not in listed.stdout
