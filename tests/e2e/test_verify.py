"""`scout verify` on the running pipeline (API, worker, scheduler as processes on Apache Kafka and PostgreSQL):
every check passes; once the scheduler process is stopped it fails and names the scheduler as the cause."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.processes import Child
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import Pipeline, pipeline_processes

# Short intervals: a job late by 3 intervals + the 30 s grace shows the scheduler is gone within a minute.
INTERVALS = {"gold_refresh_interval_s": "1", "relink_interval_s": "2", "quality_interval_s": "5",
             "retention_interval_s": "5"}


@pytest.fixture
def deployment(settings: Settings) -> Iterator[Pipeline]:
    with pipeline_processes(settings, token=("--name", "verify device", "--all-stores"), worker_metrics_port="0",
                            scheduler_metrics_port="0", **INTERVALS) as running:
        yield running


def verify(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`scout verify ARGS` as a user runs it: exit code and what it printed on stdout."""
    result = subprocess.run([sys.executable, "-m", "cli.main", "verify", *args], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode in {0, 1}, result.stderr
    return result.returncode, result.stdout


def checks(env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]]]:
    code, out = verify(env, "--json", "--max-lag", "0")
    body = json.loads(out)
    assert body["ok"] is (code == 0)
    return code, {c["check"]: c for c in body["checks"]}


def all_ok(results: dict[str, dict[str, Any]]) -> bool:
    """Every check ok (a warning such as "rebalancing" passes verify, but settles within seconds)."""
    return {c["status"] for c in results.values()} == {"ok"}


def _stop(child: Child) -> None:
    os.killpg(child.proc.pid, signal.SIGTERM)
    child.proc.wait(30)


def test_verify_passes_on_the_running_pipeline_and_names_a_stopped_scheduler(deployment: Pipeline) -> None:
    gen = Generator(seed=11)
    with httpx.Client(base_url=deployment.url, timeout=30,
                      headers={"Authorization": f"Bearer {deployment.token}"}) as client:
        for n in range(5):
            assert client.post("/v1/transactions", json=gen.transaction(n)).status_code == 202

    code, passing = eventually(lambda: checks(deployment.env), until=lambda r: r[0] == 0 and all_ok(r[1]),
                               timeout=180, what="every scout verify check to be ok on the running pipeline")
    assert {name: c["status"] for name, c in passing.items()} == {
        "database": "ok", "migrations": "ok", "roles and grants": "ok", "kafka topics": "ok",
        "kafka replication": "ok", "consumer group": "ok", "bronze progress": "ok", "bronze partitions": "ok",
        "silver backlog": "ok",
        "gold views": "ok",
        "scheduler jobs": "ok", "alerts": "ok",
    }
    assert "lag 0" in passing["consumer group"]["detail"]  # --max-lag 0: every posted transaction consumed
    assert "6 jobs ran on schedule" in passing["scheduler jobs"]["detail"]

    (scheduler,) = [c for c in deployment.children.running if c.name == "scheduler"]
    _stop(scheduler)
    code, failing = eventually(lambda: checks(deployment.env),
                               until=lambda r: r[1]["scheduler jobs"]["status"] == "fail", timeout=180,
                               what="scout verify to notice the stopped scheduler")
    assert code == 1
    assert failing["scheduler jobs"]["detail"].startswith("scheduler down or stuck: gold-refresh last ran")
    assert "start `scout scheduler`" in failing["scheduler jobs"]["detail"]
    # The rest of the deployment is still healthy: the scheduler is the one cause named.
    assert [name for name, c in failing.items() if c["status"] == "fail"] == ["scheduler jobs"]

    code, table = verify(deployment.env)
    assert code == 1
    assert "FAILED: scheduler jobs" in table
