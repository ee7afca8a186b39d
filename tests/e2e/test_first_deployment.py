"""A first deployment by the README, on Apache Kafka with topic auto-creation off and an empty database: the
commands an operator runs, as processes — migrate, topics, a device token, the API, two workers on one host
(each with its own metrics port), the scheduler — then traffic, and `scout verify` passes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from cli.processes import Children, child_env
from cli.services import free_port
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.test_verify import all_ok, checks
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token
from tests.services import Postgres


def _scout(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _metrics(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return ""


def test_a_first_deployment_by_the_readme_passes_scout_verify(postgres: Postgres, kafka_bootstrap: str,
                                                             tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    api_port, metrics = free_port(), [free_port(), free_port()]
    env = child_env(database_url=postgres.fresh_database(migrated=False), kafka_bootstrap=kafka_bootstrap,
                    topic=f"first.transactions.{suffix}", dead_letter_topic=f"first.dlq.{suffix}",
                    stream_app_id=f"first-{suffix}", api_port=str(api_port), data_dir=str(tmp_path / "data"),
                    scheduler_metrics_port=str(free_port()), gold_refresh_interval_s="1")
    for step in (("migrate",), ("topics", "create")):
        done = _scout(env, *step)
        assert done.returncode == 0, done.stdout + done.stderr
    _, token = cli_token(env, "--name", "till 1", "--all-stores")
    children = Children(env, tmp_path / "logs")
    try:
        children.start("api", "api")
        for n, port in enumerate(metrics):
            children.env = {**env, "SCOUT_WORKER_METRICS_PORT": str(port)}
            children.start(f"worker-{n}", "worker")
        children.env = env
        children.start("scheduler", "scheduler")
        url = f"http://127.0.0.1:{api_port}"
        wait_api_ready(url)
        gen = Generator(seed=77)
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
            assert {client.post("/v1/transactions", json=gen.transaction(n)).status_code for n in range(20)} == {202}
        # Both workers join one after the other: verify says "rebalancing" (warn) until the group settles.
        _, passing = eventually(lambda: checks(env), until=lambda r: r[0] == 0 and all_ok(r[1]), timeout=180,
                                what="every scout verify check to be ok on the first deployment")
        served = [eventually(lambda p=p: _metrics(p), until=lambda text: "scout_stage_rows_total" in text,
                             timeout=60, what=f"worker metrics on port {p}") for p in metrics]
        assert not children.dead(), [c.name for c in children.dead()]
    finally:
        stop_and_show_logs(children)
    assert {c["status"] for c in passing.values()} == {"ok"}
    assert "2 member(s)" in passing["consumer group"]["detail"]
    assert all(text for text in served)
