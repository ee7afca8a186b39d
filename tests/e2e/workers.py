"""Start Scout's processes (`scout api`, `scout worker`, `scout scheduler`) on the test's own topics and
database.

Example::

    with pipeline_processes(settings, quality_interval_s="1") as running:
        httpx.post(f"{running.url}/v1/transactions", headers=running.auth, json=body)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from cli.processes import Children, child_env
from cli.services import free_port
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.conftest import eventually
from tests.factories import cli_token

DEVICE = ("--name", "e2e device", "--all-stores", "--rate-limit", "100000")


@dataclass(frozen=True)
class Pipeline:
    """API, worker and scheduler running as processes; ``token`` is a device token made by `scout tokens`."""

    url: str
    token: str
    env: dict[str, str]
    children: Children
    worker_metrics: str
    scheduler_metrics: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def pipeline_processes(settings: Settings, *, token: Sequence[str] = DEVICE,
                       prepare: Callable[[dict[str, str]], None] | None = None, **extra: str) -> Iterator[Pipeline]:
    """The whole pipeline with short intervals; ``extra`` settings (child_env names) override the defaults,
    ``prepare(env)`` runs before the processes start (e.g. a catalogue import)."""
    ensure_topics(settings)
    port, worker_metrics, scheduler_metrics = free_port(), free_port(), free_port()
    env = child_env(**{
        "database_url": settings.database_dsn(), "kafka_bootstrap": settings.kafka_bootstrap, "topic": settings.topic,
        "dead_letter_topic": settings.dead_letter_topic, "stream_app_id": settings.stream_app_id,
        "topic_partitions": str(settings.topic_partitions), "api_port": str(port),
        "worker_web_port": str(free_port()), "data_dir": str(settings.data_dir), "gold_refresh_interval_s": "1",
        "worker_metrics_port": str(worker_metrics), "scheduler_metrics_port": str(scheduler_metrics),
        "silver_idle_interval_s": "0.1", "bronze_batch_within_s": "0.2", **extra,
    })
    _, secret = cli_token(env, *token)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if prepare is not None:
        prepare(env)
    children = Children(env, settings.data_dir / "logs")
    for name in ("api", "worker", "scheduler"):
        children.start(name, name)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_api_ready(url)
        yield Pipeline(url, secret, env, children, f"http://127.0.0.1:{worker_metrics}/metrics",
                       f"http://127.0.0.1:{scheduler_metrics}/metrics")
    finally:
        stop_and_show_logs(children)


@contextmanager
def worker_processes(settings: Settings, count: int = 1, *, log_dir: Path | None = None,
                     **extra: str) -> Iterator[Children]:
    ensure_topics(settings)
    env = child_env(**{
        "database_url": settings.database_dsn(), "kafka_bootstrap": settings.kafka_bootstrap, "topic": settings.topic,
        "dead_letter_topic": settings.dead_letter_topic, "stream_app_id": settings.stream_app_id,
        "data_dir": str(settings.data_dir), "silver_idle_interval_s": "0.1", "bronze_batch_within_s": "0.2",
        "retry_max_backoff_s": "1", "worker_metrics_port": "0", "topic_partitions": str(settings.topic_partitions),
        **extra,
    })
    children = Children(env, log_dir or settings.data_dir / "logs")
    for n in range(count):
        children.env = {**env, "SCOUT_WORKER_WEB_PORT": str(free_port())}
        children.start(f"worker-{n}", "worker")
    try:
        yield children
    finally:
        stop_and_show_logs(children)


@contextmanager
def api_process(settings: Settings, **extra: str) -> Iterator[tuple[str, dict[str, str], Children]]:
    """`scout api` on a free port over the test's topics and database: (url, env, children)."""
    ensure_topics(settings)
    port = free_port()
    env = child_env(database_url=settings.database_dsn(), kafka_bootstrap=settings.kafka_bootstrap,
                    topic=settings.topic, dead_letter_topic=settings.dead_letter_topic, api_port=str(port),
                    data_dir=str(settings.data_dir), **extra)
    children = Children(env, settings.data_dir / "logs")
    children.start("api", "api")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_api_ready(url)
        yield url, env, children
    finally:
        stop_and_show_logs(children)


def stop_and_show_logs(children: Children) -> None:
    """Stop every child and print the end of its log (pytest shows it when a test failed)."""
    children.stop_all()
    for child in children.running:
        tail = child.log.read_text(errors="replace")[-3000:]
        print(f"--- {child.name} (exit {child.proc.returncode}) ---\n{tail}")


def wait_api_ready(url: str, timeout: float = 60) -> None:
    eventually(lambda: _status(f"{url}/readyz"), until=lambda s: s == 200, timeout=timeout, what="API ready")


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0
