"""prometheus_client multiprocess mode for a server with several worker processes (``scout api --workers N``).

Example::

    prepare_directory(Path(".scout/metrics/api"))   # before prometheus_client is imported by the workers
    app.mount("/metrics", metrics_app())              # every worker answers with the sum over all workers

prometheus_client decides at import time whether values live in memory or in files under
``PROMETHEUS_MULTIPROC_DIR``; the directory must be empty when the server starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app, multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"


def directory() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def prepare_directory(path: Path) -> Path:
    """Create (or empty) the directory and point this process and its children at it."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[ENV] = str(path)
    return path


def metrics_app() -> Any:
    """An ASGI app serving this process's metrics, or every worker's when multiprocess mode is on."""
    if directory() is None:
        return make_asgi_app(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return make_asgi_app(registry)


def process_exited(pid: int | None = None) -> None:
    """Drop a finished worker's live gauges (``livesum``) from the aggregate."""
    path = directory()
    if path is not None:
        multiprocess.mark_process_dead(pid or os.getpid(), str(path))
