"""Serve this process's Prometheus metrics on HOST:PORT (worker and scheduler; the API mounts its own)."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def serve_metrics(host: str, port: int, *, process: str) -> bool:
    """Start the metrics endpoint; a taken port is logged, never fatal (e.g. two workers on one host)."""
    if port == 0:
        return False
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("%s: metrics not served on %s:%d (%s); set another port or 0", process, host, port, exc)
        return False
    log.info("%s: metrics on http://%s:%d/metrics", process, host, port)
    return True
