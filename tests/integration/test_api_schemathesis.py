"""schemathesis against the app's own OpenAPI document, in-process (ASGI) with the real Kafka publisher and
PostgreSQL token and idempotency stores: no generated request gets a 5xx, every answer is documented."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingest_api.app import create_app
from ingest_api.idempotency import KEY_PATTERN
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.factories import bearer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@schemathesis.serializer("application/x-ndjson")
def ndjson(context: Any, value: Any) -> bytes:
    """The batch endpoint's NDJSON body is documented as a string: send it as it is (anything else as JSON)."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture
def auth(settings: Settings) -> dict[str, str]:
    return bearer(settings.database_dsn(), scopes=("ingest", "read"), rate=1_000_000)


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    ensure_topics(settings)
    application = create_app(settings.model_copy(update={"produce_timeout_s": 10.0}))
    try:
        yield application
    finally:
        asgi.shutdown_lifespans()  # schemathesis runs the app's lifespan (publisher, pools) until here


# The document does not depend on where Kafka or PostgreSQL are: load it from an app that never starts.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: Any, app: Any, auth: dict[str, str]) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and re.fullmatch(KEY_PATTERN, key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex  # else most bodies would meet a reused key (409)
    case.call_and_validate(headers=auth, checks=CHECKS, app=app)
