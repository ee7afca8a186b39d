"""CSV uploads on real Kafka and PostgreSQL: counts, rejected rows as CSV, SSE to the end, the circuit breaker."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ingest_api.app import create_app
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.conftest import eventually
from tests.factories import bearer, topic_messages

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def line(invoice: str, code: str, qty: str = "2", price: str = "1.25", country: str = "United Kingdom") -> str:
    return f"{invoice},{code},ITEM {code},{qty},2009-12-01 07:45:00,{price},13085.0,{country}\n"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    ensure_topics(settings)
    with TestClient(create_app(settings), headers=bearer(settings.database_dsn())) as test_client:
        yield test_client


def finished(client: TestClient, job_id: str) -> dict[str, Any]:
    return eventually(lambda: client.get(f"/v1/uploads/{job_id}").json(),
                      until=lambda job: job["state"] != "running", timeout=30, what="upload finished")


def upload_metrics(client: TestClient) -> dict[str, float]:
    """The upload series the API's /metrics/ shows: rows by outcome, jobs by state, active jobs."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics/").text):
        for sample in family.samples:
            if sample.name in {"scout_upload_rows_total", "scout_uploads_total", "scout_uploads_active"}:
                key = ",".join([sample.name, *(f"{k}={v}" for k, v in sorted(sample.labels.items()))])
                found[key] = sample.value
    return found


def test_upload_publishes_one_transaction_per_invoice_and_lists_rejected_rows(client: TestClient,
                                                                              settings: Settings) -> None:
    before = upload_metrics(client)
    body = HEADER + line("1", "85048") + line("1", "85049") + line("1", "85049") + "\n" \
        + line("C2", "85048", qty="-1") + line("3", "POST") + line("3", "D1", price="0") \
        + line("4", "85048", country="France")
    response = client.post("/v1/uploads?filename=x.csv", content=body.encode(),
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    with client.stream("GET", f"/v1/uploads/{job_id}/events") as events:
        lines = [ln for ln in events.iter_lines() if ln]
    assert lines[-2] == "event: done"
    job = orjson.loads(lines[-1].removeprefix("data: "))
    assert job == finished(client, job_id)
    assert (job["state"], job["rows_read"], job["rows_accepted"], job["rows_duplicate"], job["rows_rejected"],
            job["transactions_published"]) == ("succeeded", 7, 3, 1, 3, 2)
    messages = topic_messages(settings)
    assert sorted(m["transaction"]["transaction_id"] for _, m in messages) == ["1", "4"]
    assert {m["source"] for _, m in messages} == {"bulk"}
    assert {m["transaction"]["total_amount"] for _, m in messages} == {"5.00", "2.50"}
    errors = client.get(f"/v1/uploads/{job_id}/errors.csv")
    assert errors.status_code == 200 and errors.headers["content-type"].startswith("text/csv")
    assert errors.text.splitlines() == [
        "row,column,reason,value", "4,*,duplicate_line,same as row 3", "6,Invoice,cancellation,C2",
        "7,StockCode,non_product_code,POST", "8,Price,non_positive_price,0",
    ]
    after = upload_metrics(client)
    grew = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    assert grew == {"scout_upload_rows_total,outcome=accepted": 3, "scout_upload_rows_total,outcome=duplicate": 1,
                    "scout_upload_rows_total,outcome=rejected": 3, "scout_uploads_total,state=succeeded": 1}
    assert after["scout_uploads_active"] == 0


def test_errors_csv_quotes_values_that_a_spreadsheet_would_run(client: TestClient) -> None:
    body = HEADER + line("1", "85048", qty="=1+1") + line("2", "85048", qty="-3") \
        + line("3", "85048", qty="@SUM(A1)") + line("4", "85048")
    job = finished(client, client.post("/v1/uploads", content=body.encode()).json()["id"])
    assert (job["state"], job["rows_rejected"], job["transactions_published"]) == ("succeeded", 3, 1)
    errors = client.get(f"/v1/uploads/{job['id']}/errors.csv")
    assert errors.text.splitlines() == [
        "row,column,reason,value", "2,Quantity,not_an_integer,'=1+1", "3,Quantity,non_positive_quantity,-3",
        "4,Quantity,not_an_integer,'@SUM(A1)",
    ]


def test_a_five_megabyte_cell_rejects_its_row_and_the_rest_is_published(client: TestClient,
                                                                       settings: Settings) -> None:
    huge = "X" * 5_000_000
    body = HEADER + line("1", "85048") \
        + f"2,85049,{huge},1,2009-12-01 07:45:00,1.00,13085.0,United Kingdom\n" + line("2", "85050") \
        + f"3,85048,ITEM,1,2009-12-01 07:45:00,1.00,{huge},France\n" + line("4", "85048")
    response = client.post("/v1/uploads", content=body.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 202, response.text
    job = finished(client, response.json()["id"])
    assert (job["state"], job["reason"], job["rows_read"], job["rows_accepted"], job["rows_rejected"],
            job["transactions_published"]) == ("succeeded", None, 5, 3, 2, 3)
    published = {m["transaction"]["transaction_id"]: m["transaction"] for _, m in topic_messages(settings)}
    assert sorted(published) == ["1", "2", "4"]
    assert [i["product_id"] for i in published["2"]["items"]] == ["85050"]  # its invoice goes on without it
    errors = list(csv.reader(io.StringIO(client.get(f"/v1/uploads/{job['id']}/errors.csv").text)))
    assert [row[:3] for row in errors] == [["row", "column", "reason"], ["3", "Description", "too_long"],
                                           ["5", "Customer ID", "too_long"]]
    assert errors[1][3].startswith("5000000 characters, at most 200: XXX")
    assert errors[2][3].startswith("5000000 characters, at most 1000: XXX")


def test_breaker_stops_a_file_with_30_percent_bad_rows_and_reports_what_was_published(
        client: TestClient, settings: Settings) -> None:
    rows = [line(str(n), "A", price="abc" if n % 10 < 3 else "1.00") for n in range(1, 1001)]
    response = client.post("/v1/uploads", content=(HEADER + "".join(rows)).encode())
    assert response.status_code == 202, response.text
    job = finished(client, response.json()["id"])
    assert job["state"] == "stopped" and job["reason"].startswith("circuit_breaker: ")
    # 100 rows read (30 bad) is the first point past the floor; 30 > 20% of 100
    assert (job["rows_read"], job["rows_rejected"], job["transactions_published"]) == (100, 30, 70)
    published = sorted(int(m["transaction"]["transaction_id"]) for _, m in topic_messages(settings))
    assert len(published) == job["transactions_published"] and published[-1] == int(job["last_published_invoice"])


def test_unknown_mapping_and_empty_body_are_422(client: TestClient) -> None:
    assert client.post("/v1/uploads?mapping=nope", content=b"x").status_code == 422
    response = client.post("/v1/uploads", content=b"")
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


def test_upload_needs_an_ingest_token(settings: Settings) -> None:
    reader = bearer(settings.database_dsn(), scopes=("read",))
    with TestClient(create_app(settings), headers=reader) as client:
        assert client.post("/v1/uploads", content=(HEADER + line("1", "A")).encode()).status_code == 403


def test_multipart_upload_is_the_same_job(client: TestClient) -> None:
    body = HEADER + line("1", "85048") + line("2", "85049", qty="0")
    response = client.post("/v1/uploads", files={"file": ("sales.csv", body.encode(), "text/csv")})
    assert response.status_code == 202, response.text
    job = finished(client, response.json()["id"])
    assert (job["filename"], job["state"], job["rows_read"], job["rows_accepted"], job["rows_rejected"]) == (
        "sales.csv", "succeeded", 2, 1, 1)
    assert client.post("/v1/uploads", files={"other": ("x.csv", b"x", "text/csv")}).status_code == 422
