"""HTTP metrics for every request (by route template, method and status; latency; in flight) as ASGI middleware.

The ingest routes' full latency (authentication and body included, every status) also goes to
``scout_ingest_request_seconds{endpoint="single"|"batch"}``, which the alert rules and dashboards use.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.metrics import HTTP_IN_FLIGHT, HTTP_LATENCY, HTTP_REQUESTS, INGEST_LATENCY

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
INGEST_ENDPOINTS = {"/v1/transactions": "single", "/v1/transactions:batch": "batch"}


def route_label(scope: Scope) -> str:
    """The matched route's template (``/v1/transactions``), never the raw path, to bound label values."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    root = scope.get("root_path", "")
    raw = scope.get("path", "")
    if raw.startswith(f"{root}/metrics"):
        return "/metrics"
    return UNMATCHED


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # the labelled metrics of each (route, method, status): a labels() call takes a lock and builds a key on
        # every request; bounded by the route templates, METHODS and the status codes
        self._counted: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def _metrics(self, route: str, method: str, status: int) -> tuple[Any, Any, Any]:
        metrics = self._counted.get((route, method, status))
        if metrics is None:
            endpoint = INGEST_ENDPOINTS.get(route) if method == "POST" else None
            metrics = (HTTP_REQUESTS.labels(route, method, str(status)), HTTP_LATENCY.labels(route, method),
                       INGEST_LATENCY.labels(endpoint) if endpoint is not None else None)
            self._counted[(route, method, status)] = metrics
        return metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            HTTP_IN_FLIGHT.dec()
            method = scope.get("method", "")
            elapsed = time.perf_counter() - started
            requests, latency, ingest = self._metrics(route_label(scope), method if method in METHODS else "OTHER",
                                                      status)
            requests.inc()
            latency.observe(elapsed)
            if ingest is not None:
                ingest.observe(elapsed)
