"""Walk the route table of create_app(settings): every route but the documented public ones refuses a
request without a token (401) and a token of the wrong scope (403). Each route's scope is listed here, so
a route added without a decision fails this test."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from ingest_api.app import create_app
from scout.settings import Settings
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens

PUBLIC = {
    ("GET", "/healthz"), ("GET", "/readyz"),  # liveness and readiness probes
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
    ("MOUNT", "/metrics"),  # Prometheus scrapes it (bind to a private interface)
    # The status page, its script and style and the runbook: no figures of their own (they come from
    # /v1/status, read scope), the same for every caller.
    ("GET", "/status"), ("GET", "/status/assets/{name}"), ("GET", "/status/runbook"),
}

SCOPES = {
    ("POST", "/v1/transactions"): "ingest",
    ("POST", "/v1/transactions:batch"): "ingest",
    ("POST", "/v1/uploads"): "ingest",
    ("GET", "/v1/uploads/{job_id}"): "ingest",
    ("GET", "/v1/uploads/{job_id}/errors.csv"): "ingest",
    ("GET", "/v1/uploads/{job_id}/events"): "ingest",
    ("GET", "/v1/alerts"): "read",
    ("GET", "/v1/status"): "read",
    ("POST", "/v1/query"): "read",
    ("GET", "/v1/dashboard/summary"): "read",
    ("GET", "/v1/stores/{store_id}"): "read",
    ("GET", "/v1/upsell"): "read",
    ("GET", "/v1/analytics/trends"): "read",
    ("POST", "/v1/simulator/start"): "admin",
    ("POST", "/v1/simulator/stop"): "admin",
    ("GET", "/v1/simulator/status"): "admin",
}

WRONG = {"ingest": ["read"], "read": ["ingest"], "admin": ["ingest", "read"]}
PATH_VALUES = {"job_id": "6f1d8a4e-0c5b-4a53-9a43-3f1b1f4b2a10", "store_id": "STORE-001", "name": "status.js"}


def _table() -> set[tuple[str, str]]:
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", database_url=None))
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):  # routers included in the app, flattened
        assert route.path is not None
        if isinstance(route.original_route, Mount):
            found.add(("MOUNT", route.path))
        else:
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


def test_every_route_has_a_decision() -> None:
    table = _table()
    assert table - PUBLIC - set(SCOPES) == set(), "new routes: add them to SCOPES (or PUBLIC, documented)"
    assert set(SCOPES) | PUBLIC == table, "routes listed here no longer exist"


@pytest.fixture(scope="module")
def client_and_tokens() -> Iterator[tuple[TestClient, FakeTokens]]:
    tokens = FakeTokens()
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, auth_failure_burst=10_000)
    app = create_app(settings, publisher=FakePublisher(), tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client, tokens


@pytest.mark.parametrize(("method", "path"), sorted(SCOPES), ids=[f"{m} {p}" for m, p in sorted(SCOPES)])
def test_route_refuses_no_token_and_the_wrong_scope(client_and_tokens: tuple[TestClient, FakeTokens],
                                                   method: str, path: str) -> None:
    client, tokens = client_and_tokens
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    anonymous = client.request(method, url)
    secret = tokens.add(scopes=WRONG[SCOPES[method, path]])
    wrong = client.request(method, url, headers={"Authorization": f"Bearer {secret}"})
    garbage = client.request(method, url, headers={"Authorization": "Bearer sct_not-a-token"})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert garbage.status_code == 401, garbage.text
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["error"]["code"] == "insufficient_scope"


@pytest.mark.parametrize(("method", "path"), sorted(p for p in PUBLIC if p[0] != "MOUNT"))
def test_public_routes_need_no_token(client_and_tokens: tuple[TestClient, FakeTokens], method: str,
                                     path: str) -> None:
    client, _ = client_and_tokens
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    assert client.request(method, url).status_code in (200, 503)  # /readyz: 503 with no broker here
