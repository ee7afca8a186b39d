"""Hostile input never makes a 5xx or an unhandled exception: deeply nested and oversized JSON, unicode edge
cases in every text field, SQL injection strings, and fuzzed CSV uploads (hypothesis). What is accepted is
kept verbatim; what is refused gets a clear 4xx (or, in a CSV, a per-row or per-file error)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ingest_api.app import create_app
from scout.invoice_mapping import Mapping, UploadFormatError, map_csv
from scout.settings import Settings
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens
from tests.unit.payloads import item, payload

INJECTIONS = [
    "'; DROP TABLE silver.transactions; --",
    "\" OR 1=1 --",
    "1); DELETE FROM bronze.transactions WHERE (1=1",
    "$$; SELECT pg_sleep(10); $$",
    "%(limit)s %s {0} ${x}",
    "\\'; COPY (SELECT 1) TO PROGRAM 'id'; --",
    "E'\\x00'",
]
UNICODE = [
    "\u202eRTL override\u202c",  # right-to-left override
    "e\u0301\u0301\u0301 combining",  # combining marks
    "\U0001f9c3\U0001f468\u200d\U0001f469\u200d\U0001f467 emoji ZWJ",
    "\ufeffBOM and \u200b zero width",
    "\u0645\u0631\u062d\u0628\u0627 Arabic",
    "x" * 200,  # the longest a name may be
]
TEXT_FIELDS = ["transaction_id", "store_id", "device_id", "customer_segment", "payment_method"]
ITEM_FIELDS = ["product_id", "product_name"]


@pytest.fixture
def api() -> Iterator[tuple[TestClient, FakePublisher, dict[str, str]]]:
    tokens, publisher = FakeTokens(), FakePublisher()
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, rate_limit_per_s=100_000)
    app = create_app(settings, publisher=publisher, tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, publisher, {"Authorization": f"Bearer {tokens.add(rate=100_000)}"}


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/transactions:batch"])
@pytest.mark.parametrize("body", [_nested(10_000), b"[" * 100_000 + b"]" * 100_000,
                                  b'{"items": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"],
                         ids=["objects-10k", "arrays-100k", "items-50k"])
def test_deeply_nested_json_is_4xx(api: tuple[TestClient, FakePublisher, dict[str, str]], path: str,
                                   body: bytes) -> None:
    client, publisher, auth = api
    response = client.post(path, content=body, headers={**auth, "content-type": "application/json"})
    assert response.status_code in (400, 413, 422), response.text[:300]
    assert response.json()["error"]["code"]
    assert publisher.published == []


@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/transactions:batch", "/v1/query"])
def test_oversized_body_is_413(api: tuple[TestClient, FakePublisher, dict[str, str]], path: str) -> None:
    client, publisher, auth = api
    huge = b'{"transaction_id": "' + b"x" * 12_000_000 + b'"}'
    response = client.post(path, content=huge, headers={**auth, "content-type": "application/json"})
    assert response.status_code in (403, 413), response.text[:300]  # 403: /v1/query needs the read scope
    assert publisher.published == []


def _fields() -> list[tuple[str, str]]:
    return [("top", f) for f in TEXT_FIELDS] + [("item", f) for f in ITEM_FIELDS]


def _with(where: str, name: str, value: str) -> dict[str, Any]:
    if where == "top":
        return payload(**{name: value})
    return payload(items=[item(**{name: value})])


@pytest.mark.parametrize(("where", "name"), _fields())
@pytest.mark.parametrize("value", INJECTIONS + UNICODE)
def test_strange_text_is_kept_verbatim_or_refused(api: tuple[TestClient, FakePublisher, dict[str, str]],
                                                  where: str, name: str, value: str) -> None:
    client, publisher, auth = api
    body = _with(where, name, value[:64] if name != "product_name" else value)
    response = client.post("/v1/transactions", json=body, headers=auth)
    assert response.status_code in (202, 422), response.text
    if response.status_code == 202:
        (envelope,) = publisher.published
        kept = envelope.transaction.model_dump(mode="json")
        got = kept[name] if where == "top" else kept["items"][0][name]
        assert got == (value[:64] if name != "product_name" else value)
    else:
        assert response.json()["error"]["details"][0]["field"].endswith(name)


@pytest.mark.parametrize(("where", "name"), _fields())
@pytest.mark.parametrize("value", ["NUL\u0000inside", "\ud800 lone surrogate", "x" * 100_000, ""],
                         ids=["nul", "surrogate", "very-long", "empty"])
def test_unstorable_text_is_422_naming_the_field(api: tuple[TestClient, FakePublisher, dict[str, str]],
                                                 where: str, name: str, value: str) -> None:
    client, publisher, auth = api
    body = _with(where, name, value)
    raw = _json_with_escapes(body)
    response = client.post("/v1/transactions", content=raw, headers={**auth, "content-type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    field = response.json()["error"]["details"][0]["field"]
    assert name in field or ("\ud800" in value and field == "(body)"), field  # not even valid JSON text
    assert publisher.published == []


def _json_with_escapes(body: dict[str, Any]) -> bytes:
    """JSON as a client would send it, with a lone surrogate escaped as \\ud800 (not encodable as UTF-8)."""
    import json

    return json.dumps(body, ensure_ascii=True).encode()


# --- the analyst query endpoint -------------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    "SELECT 1; DROP TABLE silver.transactions",
    "SELECT * FROM silver.transactions",
    "DELETE FROM gold.sales_by_store_day",
    "SELECT pg_sleep(60)",
    "COPY gold.sales_by_store_day TO PROGRAM 'id'",
    "SELECT set_config('role', 'postgres', false)",
    "WITH x AS (DELETE FROM bronze.transactions RETURNING 1) SELECT * FROM x",
    "SELECT " + "(" * 5000 + "1" + ")" * 5000,
    "SELECT * FROM gold.sales_by_store_day WHERE " + "NOT " * 4_000 + "true",
])
def test_query_injection_is_refused_without_a_database(sql: str) -> None:
    """No statement reaches the database unless it is one SELECT over gold: refused here with a 400/422."""
    tokens = FakeTokens()
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None)
    app = create_app(settings, publisher=FakePublisher(), tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/query", json={"sql": sql},
                               headers={"Authorization": f"Bearer {tokens.add(scopes=['read'])}"})
    assert response.status_code in (400, 422), response.text[:300]


# --- CSV upload parser, fuzzed ----------------------------------------------------------------------


MAPPING = Mapping.preset("online_retail_ii")
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\r\n"


def _consume(raw: bytes) -> int:
    """Map the whole file as an upload job reads it; returns the rows seen. Only UploadFormatError may escape."""
    stream = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline="")
    rows = 0
    try:
        for group in map_csv(stream, MAPPING):
            rows += group.rows
            for error in group.errors:
                assert error.row >= 2 and error.column and error.reason
            if group.transaction is not None:
                assert group.transaction.items
    except UploadFormatError as exc:
        assert str(exc)
    return rows


cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", '"', '""', '"a,b"', "\r\n", "\x00", "C489434", "85048", "12", "-3", "0.001", "1e9",
                     "2009-12-01 07:45:00", "2009-13-45 99:99:99", "NaN", "Infinity", "United Kingdom", "POST",
                     "TEST001", "\u202e", "x" * 300]),
)
row = st.lists(cell, min_size=0, max_size=10).map(
    lambda cells: ",".join(f'"{c}"' if c and c[0] == '"' else c for c in cells))


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2_000))
def test_csv_random_bytes(raw: bytes) -> None:
    _consume(raw)
    _consume(HEADER.encode() + raw)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, max_size=40), st.sampled_from(["\r\n", "\n", "\r"]))
def test_csv_random_rows(rows: list[str], newline: str) -> None:
    _consume((HEADER + newline.join(rows)).encode())


@pytest.mark.parametrize("raw", [
    HEADER.encode() + b'489434,85048,"unterminated,12,2009-12-01 07:45:00,6.95,13085,UK\r\n',
    HEADER.encode() + b"489434,85048," + b"x" * 200_000 + b",12,2009-12-01 07:45:00,6.95,13085,UK\r\n",
    HEADER.encode() + b'489434,85048,"a"b,12,2009-12-01 07:45:00,6.95,13085,UK\r\n',
    HEADER.encode() + "489434,85048,caf\u00e9,12,2009-12-01 07:45:00,6.95,13085,UK\r\n".encode("latin-1"),
    HEADER.encode("utf-16"),
    b"\xef\xbb\xbf" + HEADER.encode() + b"489434,85048,ok,12,2009-12-01 07:45:00,6.95,13085,UK\r\n",
    HEADER.encode() + b"489434,85048,nul\x00here,12,2009-12-01 07:45:00,6.95,13085,UK\r\n",
    HEADER.encode() + b"489434\r\n" * 1000,
], ids=["bad-quoting", "huge-field", "quote-inside", "latin-1", "utf-16", "bom", "nul", "short-rows"])
def test_csv_hostile_files_end_in_clear_errors(raw: bytes) -> None:
    _consume(raw)
