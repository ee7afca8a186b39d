"""SQL injection and unicode edge cases in every text field of a transaction land verbatim in bronze and
silver (the real bronze sink and silver step, parameters only); the analyst endpoint refuses or runs them
harmlessly, never a 5xx, and the tables are intact afterwards."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from scout.settings import Settings
from tests.factories import bearer, tx_dict
from tests.integration.quality_support import feed, quality_settings, rows

STRINGS = [
    "'; DROP TABLE silver.transactions; --",
    "\" OR 1=1 --",
    "1); DELETE FROM bronze.transactions WHERE (1=1",
    "$$; SELECT pg_sleep(10); $$",
    "%(limit)s %s {0}",
    "\\'; COPY (SELECT 1) TO PROGRAM 'id'; --",
    "\u202eRTL\u202c e\u0301\u0301 \U0001f9c3\U0001f468\u200d\U0001f469 \ufeff\u200b \u0645\u0631\u062d\u0628\u0627",
]


def test_strange_strings_are_stored_verbatim(database: str) -> None:
    bodies = []
    for n, text in enumerate(STRINGS, start=1):
        body = tx_dict(n, store=text[:64], device_id=text[:64], customer_segment=text[:64],
                       payment_method=text[:64])
        body["transaction_id"] = f"{text[:50]}#{n}"
        body["items"][0].update(product_id=text[:64], product_name=text)
        bodies.append(body)
    result = feed(database, bodies, quality_settings(database))
    assert (result.inserted, result.quarantined) == (len(STRINGS), 0)
    stored = rows(database, "SELECT t.store_id, t.transaction_id, t.device_id, t.customer_segment, t.payment_method, "
                            "l.product_id, l.product_name FROM silver.transactions t "
                            "JOIN silver.line_items l USING (txn_id) ORDER BY t.txn_id")
    expected = [(b["store_id"], b["transaction_id"], b["device_id"], b["customer_segment"], b["payment_method"],
                 b["items"][0]["product_id"], b["items"][0]["product_name"]) for b in bodies]
    assert sorted(stored) == sorted(expected)
    assert rows(database, "SELECT count(*) FROM bronze.transactions") == [(len(STRINGS),)]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM gold.sales_by_store_day WHERE store_id = '' OR 1=1; --'",
    "SELECT * FROM gold.sales_by_store_day WHERE store_id = '''; DROP TABLE silver.transactions; --'",
    "SELECT E'\\x00'",
    "SELECT '\u0000'",
    "SELECT 1 FROM gold.sales_by_store_day; DELETE FROM bronze.transactions",
    "SELECT * FROM gold.sales_by_store_day WHERE store_id = $1",
    "SELECT %s, %(x)s FROM gold.sales_by_store_day",
    "SELECT pg_sleep(1)",
    "SELECT * FROM gold.sales_by_store_day UNION SELECT * FROM silver.transactions",
    "SELECT (SELECT count(*) FROM pg_catalog.pg_authid)",
])
def test_analyst_query_injection_is_4xx_or_harmless(settings: Settings, sql: str) -> None:
    headers = bearer(settings.database_dsn(), scopes=("read",))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/v1/query", json={"sql": sql}, headers=headers)
    assert response.status_code in (200, 400, 422), response.text
    with psycopg.connect(settings.database_dsn()) as conn:
        tables = conn.execute("SELECT to_regclass('silver.transactions'), to_regclass('bronze.transactions')"
                              ).fetchone()
    assert tables == ("silver.transactions", "bronze.transactions")
