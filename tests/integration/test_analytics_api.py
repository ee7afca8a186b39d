"""The analyst endpoints on a real database seeded with the hand-worked dataset (tests/integration/gold_dataset.py):
the query endpoint runs as scout_reader and refuses what it must, with the reason; dashboard, store, upsell
and trends answer with the figures worked out by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from ingest_api.app import create_app
from jobs.gold import GOLD_VIEWS, refresh_gold
from scout.settings import Settings
from tests.factories import bearer
from tests.integration import gold_dataset


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    dsn = settings.database_dsn()
    gold_dataset.seed(dsn)
    with ConnectionPool(dsn, min_size=1, max_size=2, open=True) as pool:
        refresh_gold(pool)
    config = settings.model_copy(update={"query_max_rows": 3, "query_timeout_ms": 300})
    with TestClient(create_app(config), headers=bearer(dsn, scopes=("read",))) as test_client:
        yield test_client


def test_analyst_routes_need_a_read_token(settings: Settings) -> None:
    dsn = settings.database_dsn()
    with TestClient(create_app(settings)) as anonymous:
        assert anonymous.get("/v1/dashboard/summary").status_code == 401
        ingest_only = bearer(dsn, scopes=("ingest",))
        refused = anonymous.post("/v1/query", json={"sql": "SELECT 1"}, headers=ingest_only)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"


def test_query_returns_json_with_exact_money_and_a_limit(client: TestClient) -> None:
    response = client.post("/v1/query", json={
        "sql": "SELECT store_id, sum(revenue) AS revenue FROM gold.sales_by_store_day GROUP BY 1 ORDER BY 2 DESC"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == [{"name": "store_id", "type": "text"}, {"name": "revenue", "type": "numeric"}]
    assert body["rows"] == [["S1", "460.00"], ["S3", "205.00"], ["S2", "160.00"]]  # S4 cut by the limit of 3
    assert (body["row_count"], body["limit"], body["limit_applied"]) == (3, 3, True)
    assert body["sql"].endswith("LIMIT 3")


def test_query_as_csv(client: TestClient) -> None:
    sql = "SELECT store_id, day, revenue FROM gold.sales_by_store_day WHERE store_id = 'S2' ORDER BY day"
    by_field = client.post("/v1/query", json={"sql": sql, "format": "csv"})
    by_header = client.post("/v1/query", json={"sql": sql}, headers={"accept": "text/csv"})
    expected = "store_id,day,revenue\nS2,2025-03-06,85.00\nS2,2025-03-16,55.00\nS2,2025-03-26,20.00\n"
    assert by_field.status_code == by_header.status_code == 200
    assert by_field.headers["content-type"].startswith("text/csv")
    assert by_field.text == by_header.text == expected


def test_query_runs_as_the_reader_role_in_a_read_only_transaction(client: TestClient) -> None:
    body = client.post("/v1/query", json={"sql": "SELECT current_user AS who"}).json()
    assert body["rows"] == [["scout_reader"]]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE TABLE gold.t (a int)", "only a SELECT query is allowed; this is CREATE"),
        ("DROP MATERIALIZED VIEW gold.sales_by_store_day", "only a SELECT query is allowed; this is DROP"),
        ("DELETE FROM gold.sales_by_store_day", "only a SELECT query is allowed; this is DELETE"),
        ("WITH d AS (DELETE FROM gold.sales_by_store_day RETURNING *) SELECT * FROM d", "DELETE"),
        ("SELECT 1; SELECT 2", "exactly one statement is allowed; found 2"),
        ("SELECT pg_sleep(30)", "function pg_sleep is not allowed"),
        ("SELECT * FROM silver.transactions", "silver.transactions is outside schema gold"),
        ("SELECT * FROM ops.job_runs", "ops.job_runs is outside schema gold"),
        ("SELECT set_config('statement_timeout', '0', false)", "function set_config is not allowed"),
        ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file is not allowed"),
        ("SELECT 1 -- harmless\n; DROP TABLE gold.sales_by_store_day", "exactly one statement"),
        ("SELECT * FROM /*gold.*/silver.transactions", "silver.transactions is outside schema gold"),
    ],
)
def test_query_refusals_say_why(client: TestClient, sql: str, reason: str) -> None:
    response = client.post("/v1/query", json={"sql": sql})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "query_refused"
    assert reason in error["message"]


def test_a_slow_query_is_cancelled_by_the_statement_timeout(client: TestClient) -> None:
    response = client.post("/v1/query", json={
        "sql": "SELECT count(*) FROM gold.sales_by_store_day, generate_series(1, 200000000)"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "query_timeout", "message": "the query ran longer than 300 ms and was cancelled", "details": []}


def test_a_failing_query_reports_the_database_message(client: TestClient) -> None:
    response = client.post("/v1/query", json={"sql": "SELECT nope FROM gold.sales_by_store_day"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == 'the query failed: column "nope" does not exist'


def test_dashboard_summary(client: TestClient) -> None:
    body = client.get("/v1/dashboard/summary").json()
    assert (body["stores"], body["products"], body["orders"]) == (4, 4, 10)
    assert (body["revenue"], body["average_order_value"]) == ("845.00", "84.50")
    assert [(s["store_id"], s["revenue"]) for s in body["top_stores"]] == [
        ("S1", "460.00"), ("S3", "205.00"), ("S2", "160.00"), ("S4", "20.00")]
    assert [(p["sku"], p["revenue"]) for p in body["top_products"]] == [
        ("COLA", "400.00"), ("CHIPS", "210.00"), ("BREAD", "135.00"), ("SOAP", "100.00")]
    assert body["current"] is True and body["refreshed_at"] is not None


def test_store_page(client: TestClient) -> None:
    s1 = client.get("/v1/stores/S1").json()
    assert s1["summary"] == {"orders": 4, "revenue": "460.00", "average_order_value": "115.00", "active_days": 4,
                             "first_day": "2025-03-03", "last_day": "2025-03-27"}
    assert (s1["segment"]["value_tier"], s1["segment"]["churn_risk"]) == ("high", "low")
    prediction = s1["prediction"]
    assert (prediction["expected_date"], prediction["confidence"]) == ("2025-04-04", "0.500")
    assert [i["sku"] for i in prediction["expected_items"]] == ["COLA", "CHIPS", "BREAD"]
    s4 = client.get("/v1/stores/S4").json()
    assert (s4["segment"]["value_tier"], s4["segment"]["churn_risk"], s4["prediction"]) == ("low", "high", None)
    missing = client.get("/v1/stores/NOPE")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "store_not_found"


def test_upsell_ranks_by_lift_then_confidence_and_skips_the_basket(client: TestClient) -> None:
    cola = client.get("/v1/upsell", params={"product_id": "COLA"}).json()
    # COLA -> CHIPS: lift 1.6667, confidence 5/6; COLA -> BREAD: lift 1.1111, confidence 2/6
    assert [(s["sku"], s["lift"], s["confidence"]) for s in cola["suggestions"]] == [
        ("CHIPS", "1.6667", "0.8333"), ("BREAD", "1.1111", "0.3333")]
    both = client.get("/v1/upsell", params=[("product_id", "COLA"), ("product_id", "CHIPS")]).json()
    assert [(s["sku"], s["because_of"]) for s in both["suggestions"]] == [("BREAD", "COLA")]  # COLA, CHIPS in basket
    s2 = client.get("/v1/upsell", params={"store_id": "S2"}).json()  # no products: the predicted basket (SOAP)
    assert (s2["basket"], s2["basket_source"], s2["suggestions"]) == (["SOAP"], "predicted", [])
    empty = client.get("/v1/upsell")
    assert empty.status_code == 422
    assert client.get("/v1/upsell", params={"store_id": "NOPE", "product_id": "COLA"}).status_code == 404


def test_trends_compare_the_last_days_with_the_days_before(client: TestClient) -> None:
    body = client.get("/v1/analytics/trends", params={"days": 7}).json()
    # current 2025-03-21..27: T07 20.00 (26th) + T04 95.00 (27th); previous 03-14..20: T06 55.00 + T03 175.00
    assert body["as_of"] == "2025-03-27"
    assert len(body["series"]) == 7 and body["series"][0]["day"] == "2025-03-21"
    assert body["series"][-1] == {"day": "2025-03-27", "orders": 1, "revenue": "95.00", "average_order_value": "95.00"}
    assert body["current"] == {"orders": 2, "revenue": "115.00", "average_order_value": "57.50"}
    assert body["previous"] == {"orders": 2, "revenue": "230.00", "average_order_value": "115.00"}
    assert body["change_pct"] == {"orders": "0.0", "revenue": "-50.0"}
    s1 = client.get("/v1/analytics/trends", params={"days": 14, "store_id": "S1"}).json()
    # S1, 03-14..27: 175.00 + 95.00; 02-28..03-13: 80.00 + 110.00
    assert (s1["current"]["revenue"], s1["previous"]["revenue"], s1["change_pct"]["revenue"]) == (
        "270.00", "190.00", "42.1")
    assert client.get("/v1/analytics/trends", params={"days": 0}).status_code == 422


def _doc_sql_blocks() -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "ANALYSTS.md").read_text(encoding="utf-8")
    return re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL)


def test_every_example_query_of_the_analyst_guide_runs(client: TestClient) -> None:
    blocks = _doc_sql_blocks()
    assert len(blocks) >= 10
    for block in blocks:
        response = client.post("/v1/query", json={"sql": block})
        assert response.status_code == 200, (block, response.text)


def test_the_analyst_guide_describes_every_gold_view() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "ANALYSTS.md").read_text(encoding="utf-8")
    for view in [v.name for v in GOLD_VIEWS]:
        assert f"### {view} " in text, view
    assert "gold.refresh_status" in text


def test_query_as_csv_quotes_text_that_a_spreadsheet_would_run(client: TestClient) -> None:
    sql = ("SELECT '=cmd|'' /C calc''!A0' AS description, '@SUM(1+1)' AS other, '-3' AS text_number, "
           "-3 AS qty, -12.50::numeric AS amount FROM gold.sales_by_store_day LIMIT 1")
    response = client.post("/v1/query", json={"sql": sql, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.text.splitlines() == ["description,other,text_number,qty,amount",
                                          "'=cmd|' /C calc'!A0,'@SUM(1+1),-3,-3,-12.50"]
