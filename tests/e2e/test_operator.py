"""A first-time operator's commands, run as processes: clean exits on SIGTERM, a missing data folder,
two workers on one host, and topics on a broker that does not create them by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
from kafka import KafkaProducer

from cli.processes import Children, child_env
from cli.services import free_port
from cli.verify.kafka import connect, partition_counts
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.workers import api_process, stop_and_show_logs, worker_processes
from tests.factories import bearer, envelope, tx_dict


def _stop(children: Children, name: str) -> int:
    """SIGTERM, then the exit status. The scheduler first finishes the job it is running (the quality suites
    can take tens of seconds on a busy machine), so the wait is generous: the status is what is checked."""
    child = next(c for c in children.running if c.name == name)
    os.killpg(child.proc.pid, signal.SIGTERM)
    return child.proc.wait(180)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return child_env(database_url=settings.database_dsn(), kafka_bootstrap=settings.kafka_bootstrap,
                     topic=settings.topic, dead_letter_topic=settings.dead_letter_topic,
                     stream_app_id=settings.stream_app_id, data_dir=str(settings.data_dir), **extra)


def test_api_exits_0_after_sigterm(settings: Settings) -> None:
    with api_process(settings) as (_, _, children):
        assert _stop(children, "api") == 0


def test_scheduler_exits_0_after_sigterm(settings: Settings) -> None:
    children = Children(_env(settings, scheduler_metrics_port="0"), settings.data_dir / "logs")
    children.start("scheduler", "scheduler")
    try:
        log = children.running[0].log
        eventually(lambda: log.read_text(errors="replace"), until=lambda text: "Scheduler started" in text,
                   timeout=60, what="the scheduler to start")
        assert _stop(children, "scheduler") == 0
    finally:
        stop_and_show_logs(children)


def test_worker_creates_a_missing_data_dir_and_lands_events(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"data_dir": tmp_path / "not" / "there" / "yet"})
    with worker_processes(settings, log_dir=tmp_path / "logs") as children:
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        producer.send(settings.topic, key=b"STORE-001", value=envelope(tx_dict(1)).to_bytes())
        producer.flush()
        producer.close()
        eventually(lambda: _bronze_count(settings.database_dsn()), until=lambda n: n == 1, timeout=90,
                   what="the event in bronze")
        assert not children.dead()
    assert settings.data_dir.is_dir()


def test_worker_says_which_variable_when_the_data_dir_cannot_be_created(settings: Settings,
                                                                        tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = _env(settings.model_copy(update={"data_dir": blocker / "data"}), worker_metrics_port="0")
    done = subprocess.run([sys.executable, "-m", "cli.main", "worker"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "SCOUT_DATA_DIR" in done.stderr and str(blocker / "data") in done.stderr.replace("\n", "")


def _bronze_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM bronze.transactions").fetchone()
    assert row is not None
    return int(row[0])


def test_two_workers_on_one_host_each_serve_metrics_on_their_own_port(settings: Settings) -> None:
    taken, second = free_port(), free_port()
    ensure_topics(settings)
    env = _env(settings, worker_metrics_port=str(taken), silver_idle_interval_s="0.1")
    children = Children(env, settings.data_dir / "logs")
    try:
        children.start("worker-0", "worker")
        eventually(lambda: _metrics(taken), until=lambda text: "scout_" in text, timeout=90,
                   what="the first worker's metrics")
        clash = subprocess.run([sys.executable, "-m", "cli.main", "worker"], env=env, capture_output=True,
                               text=True, timeout=90)
        assert clash.returncode == 2  # fails fast instead of running with no metrics
        message = " ".join(clash.stderr.split())
        assert f"127.0.0.1:{taken}" in message and "SCOUT_WORKER_METRICS_PORT" in message

        children.env = {**env, "SCOUT_WORKER_METRICS_PORT": str(second)}
        children.start("worker-1", "worker")
        eventually(lambda: _metrics(second), until=lambda text: "scout_" in text, timeout=90,
                   what="the second worker's metrics")
        members = eventually(lambda: _group_members(settings), until=lambda n: n == 2, timeout=90,
                             what="both workers in the consumer group")
        assert members == 2 and _metrics(taken) and not children.dead()
    finally:
        stop_and_show_logs(children)


def _metrics(port: int) -> str:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""


def _group_members(settings: Settings) -> int:
    client = connect(settings)
    try:
        return len(client.describe_groups([settings.stream_app_id])[settings.stream_app_id]["members"])
    finally:
        client.close()


def test_api_is_not_ready_until_scout_topics_create_made_the_topics(settings: Settings) -> None:
    """The harness's Apache Kafka has auto.create.topics.enable=false, as a production broker usually has."""
    port = free_port()
    env = _env(settings, api_port=str(port))
    children = Children(env, settings.data_dir / "logs")
    children.start("api", "api")
    url = f"http://127.0.0.1:{port}"
    try:
        missing = eventually(lambda: _get(f"{url}/readyz"), until=lambda r: r is not None, timeout=60,
                             what="the API to answer")
        assert missing is not None and missing.status_code == 503
        reason = missing.json()["checks"]["kafka"]
        assert settings.topic in reason and "scout topics create" in reason

        created = subprocess.run([sys.executable, "-m", "cli.main", "topics", "create"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert created.returncode == 0, created.stderr
        assert settings.topic in created.stdout and settings.dead_letter_topic in created.stdout
        again = subprocess.run([sys.executable, "-m", "cli.main", "topics", "create"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "already" in again.stdout

        ready = eventually(lambda: _get(f"{url}/readyz"), until=lambda r: r is not None and r.status_code == 200,
                           timeout=60, what="the API ready once the topics exist")
        assert ready is not None and ready.json()["checks"]["kafka"] == "ok"
        posted = httpx.post(f"{url}/v1/transactions", json=tx_dict(1), timeout=10,
                            headers=bearer(settings.database_dsn()))
        assert posted.status_code == 202, posted.text
        assert _partitions(settings) == {settings.topic: settings.topic_partitions, settings.dead_letter_topic: 1}
    finally:
        stop_and_show_logs(children)


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def _partitions(settings: Settings) -> dict[str, int]:
    client = connect(settings)
    try:
        return partition_counts(client, [settings.topic, settings.dead_letter_topic])
    finally:
        client.close()
