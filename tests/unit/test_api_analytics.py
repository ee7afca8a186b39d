"""Analyst routes without a database: the guard answers first, then 503 in the API's one error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from scout.settings import Settings
from tests.unit.test_api_validation import FakePublisher, unused_port


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{unused_port()}", produce_timeout_s=0.5, database_url=None,
                        auth_required=False)  # auth has its own tests; these need no token store
    with TestClient(create_app(settings)) as test_client:
        test_client.app.state.publisher = FakePublisher()  # type: ignore[attr-defined]
        yield test_client


def test_a_refused_query_is_400_with_the_reason_before_any_database_work(client: TestClient) -> None:
    response = client.post("/v1/query", json={"sql": "SELECT * FROM silver.transactions"})
    assert response.status_code == 400
    assert response.json() == {"error": {
        "code": "query_refused", "message": "silver.transactions is outside schema gold; only gold.* may be read",
        "details": []}}


def test_without_a_database_the_analyst_routes_answer_503(client: TestClient) -> None:
    for method, url, body in [("POST", "/v1/query", {"sql": "SELECT * FROM gold.dashboard_summary"}),
                              ("GET", "/v1/dashboard/summary", None), ("GET", "/v1/stores/S1", None),
                              ("GET", "/v1/upsell?product_id=A", None), ("GET", "/v1/analytics/trends", None)]:
        response = client.request(method, url, json=body)
        assert response.status_code == 503, url
        assert response.json()["error"]["code"] == "database_unavailable"


def test_a_query_body_is_validated(client: TestClient) -> None:
    response = client.post("/v1/query", json={"sql": "", "format": "xml"})
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {"sql", "format"}
