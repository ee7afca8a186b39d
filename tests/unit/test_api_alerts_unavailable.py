"""GET /v1/alerts when the pool cannot hand out a connection: 503 database_unavailable in the one error shape.

The pool is a real psycopg pool aimed at a port where nothing listens, so its wait for a connection ends in
its own timeout (PoolTimeout), exactly as when the database is down or every connection is busy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from ingest_api.app import create_app
from scout.settings import Settings
from tests.unit.test_api_validation import FakePublisher, unused_port


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{unused_port()}", produce_timeout_s=0.5, database_url=None,
                        auth_required=False)
    with TestClient(create_app(settings)) as test_client:
        app = test_client.app
        app.state.publisher = FakePublisher()  # type: ignore[attr-defined]
        dead = AsyncConnectionPool(f"postgresql://scout@127.0.0.1:{unused_port()}/scout", min_size=0, max_size=1,
                                   timeout=0.5, open=False, reconnect_timeout=1)
        test_client.portal.call(dead.open)  # type: ignore[union-attr]
        app.state.pool = dead  # type: ignore[attr-defined]
        try:
            yield test_client
        finally:
            test_client.portal.call(dead.close)  # type: ignore[union-attr]


def test_a_pool_that_times_out_answers_503_with_the_reason(client: TestClient) -> None:
    response = client.get("/v1/alerts")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert error["message"].startswith("the database is unavailable: ")
    assert error["message"].endswith("; retry later")
