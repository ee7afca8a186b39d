"""The stream worker, a Faust application: the bronze consumer (a service that owns its Kafka consumer) and
the silver loop (a task), built from settings (nothing at import). Faust runs no Kafka consumer of its own.

Example::

    app = create_app(Settings())
    run_worker(app, settings)       # what `scout worker` does
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import faust
from faust.app.base import BootStrategy

from observability.logs import summarise_repeats
from observability.serve import serve_metrics
from scout.gc_tuning import tune_gc
from scout.settings import Settings
from streams.bronze.consumer import BronzeConsumer
from streams.resources import StreamResources
from streams.silver.agent import register_silver

log = logging.getLogger(__name__)


def broker_url(settings: Settings) -> str:
    return ";".join(f"kafka://{server}" for server in settings.bootstrap_servers)


class _Boot(BootStrategy):
    """Faust's own Kafka consumer and producer stay off: bronze owns its consumer."""

    enable_kafka = False


class WorkerApp(faust.App):
    BootStrategy = _Boot


def create_app(settings: Settings, *, silver: bool = True) -> faust.App:
    app = WorkerApp(
        settings.stream_app_id,
        broker=broker_url(settings),
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        web_enabled=False,
        web_host="127.0.0.1",
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1",
        datadir=str(settings.data_dir / "faust"),
    )
    resources = StreamResources(settings)
    app.service(BronzeConsumer(settings, resources))  # type: ignore[arg-type]  # an instance works (started as is)
    if silver:
        register_silver(app, resources)
    return app


EXIT_STOP_TIMEOUT = 70


class Worker(faust.Worker):
    """A Faust worker that exits on its own when a stop signal did not stop it within ``stop_timeout_s``."""

    stop_timeout_s: float = 20.0

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        summarise_repeats(logger.handlers)  # a broker outage: a few lines with counts, not thousands

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            deadline = threading.Timer(self.stop_timeout_s, _exit_now, args=(self.stop_timeout_s,))
            deadline.daemon = True
            deadline.start()
        super()._schedule_shutdown(signal)


def _exit_now(after_s: float) -> None:
    log.critical("worker: still stopping %.0f s after the signal; exiting now (offsets of rows not in PostgreSQL "
                 "were not committed, so nothing is lost)", after_s)
    logging.shutdown()
    os._exit(EXIT_STOP_TIMEOUT)


def run_worker(app: faust.App, settings: Settings) -> None:
    """Run the worker in this process until SIGTERM/SIGINT (web server off, 127.0.0.1 if on)."""
    tune_gc()
    serve_metrics(settings.metrics_host, settings.worker_metrics_port, process="worker",
                  variable="SCOUT_WORKER_METRICS_PORT")
    worker = Worker(app, loglevel="warn" if settings.log_level == "warning" else settings.log_level)
    worker.stop_timeout_s = settings.worker_stop_timeout_s
    worker.execute_from_commandline()
