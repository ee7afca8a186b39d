"""A first-time operator's commands, run as processes: clean exits on SIGTERM, a missing data folder,
two workers on one host, and topics on a broker that does not create them by itself."""

from __future__ import annotations

import os
import signal

from scout.cli.processes import Children, child_env
from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.workers import api_process, stop_and_show_logs


def _stop(children: Children, name: str) -> int:
    child = next(c for c in children.running if c.name == name)
    os.killpg(child.proc.pid, signal.SIGTERM)
    return child.proc.wait(30)


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
