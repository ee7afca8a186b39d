"""Serve this process's Prometheus metrics on HOST:PORT (worker and scheduler; the API mounts its own).

Example::

    serve_metrics("127.0.0.1", 9101, process="worker", variable="SCOUT_WORKER_METRICS_PORT")
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


class MetricsPortTaken(RuntimeError):
    """The configured metrics port cannot be bound (e.g. a second worker on one host with the same port)."""


def serve_metrics(host: str, port: int, *, process: str, variable: str) -> bool:
    """Start the metrics endpoint (False when ``port`` is 0); a port that cannot be bound raises
    MetricsPortTaken naming ``variable``: a process whose metrics nobody can scrape must not look healthy."""
    if port == 0:
        return False
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise MetricsPortTaken(
            f"{process}: cannot serve metrics on {host}:{port} ({exc.strerror or exc}); is another {process} "
            f"running on this host? Give each {process} its own port with {variable} (e.g. 9101, 9111, ...), "
            f"or {variable}=0 to serve none") from None
    log.info("%s: metrics on http://%s:%d/metrics", process, host, port)
    return True
