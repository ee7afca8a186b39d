"""The metrics the silver step and the gold refresh export, after real work on PostgreSQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from jobs.gold import refresh_gold
from streams.silver.agent import record
from tests.factories import tx_dict
from tests.integration import gold_dataset
from tests.integration.test_silver_step import _drain_all, _seed

SERIES = [
    ("scout_link_lines_total", {"method": "sku"}), ("scout_link_lines_total", {"method": "name"}),
    ("scout_link_lines_total", {"method": "unlinked"}), ("scout_quarantined_total", {"reason": "line_sum_mismatch"}),
    ("scout_quarantined_total", {"reason": "over_threshold"}), ("scout_bronze_to_silver_seconds_count", {}),
    ("scout_bronze_to_silver_seconds_sum", {}), ("scout_stage_rows_total", {"stage": "silver", "outcome": "inserted"}),
    ("scout_stage_rows_total", {"stage": "silver", "outcome": "quarantined"}),
]


def _values() -> dict[str, float]:
    return {f"{name}{labels}": REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in SERIES}


def test_silver_exports_link_methods_quarantine_reasons_and_latency(database: str) -> None:
    by_sku = tx_dict(1)
    by_sku["items"].append({"product_id": "SKU-9", "product_name": "Other", "qty": 1, "unit_price": "5.00"})
    by_sku["total_amount"] = "55.00"
    by_name = tx_dict(2)
    by_name["items"][0] = {"product_name": "product 1", "qty": 2, "unit_price": "25.00"}  # SKU-1's name
    unknown = tx_dict(3)
    unknown["items"][0] = {"product_name": "Mystery item", "qty": 2, "unit_price": "25.00"}
    mismatch = tx_dict(4, total="99.00")
    over = tx_dict(5, qty=1000, price="20.00", total="30000.00")  # over the threshold, and the sum is wrong
    before = _values()
    asyncio.run(_seed(database, [by_sku, mismatch, over]))
    results = asyncio.run(_drain_all(database, 10))
    asyncio.run(_seed(database, [by_name, unknown]))
    results += asyncio.run(_drain_all(database, 10))
    for result in results:
        record(result)
    after = _values()
    grew = {k: after[k] - before[k] for k in after}
    assert grew["scout_link_lines_total{'method': 'sku'}"] == 2
    assert grew["scout_link_lines_total{'method': 'name'}"] == 1
    assert grew["scout_link_lines_total{'method': 'unlinked'}"] == 1
    with psycopg.connect(database) as conn:
        found = conn.execute("SELECT transaction_id, reasons FROM silver.quarantine").fetchall()
    reasons: dict[str, list[str]] = dict(found)
    assert reasons == {"TXN-000004": ["line_sum_mismatch"], "TXN-000005": ["over_threshold", "line_sum_mismatch"]}
    assert grew["scout_quarantined_total{'reason': 'line_sum_mismatch'}"] == 2
    assert grew["scout_quarantined_total{'reason': 'over_threshold'}"] == 1
    assert grew["scout_stage_rows_total{'stage': 'silver', 'outcome': 'inserted'}"] == 3
    assert grew["scout_stage_rows_total{'stage': 'silver', 'outcome': 'quarantined'}"] == 2
    # one observation per transaction written to silver, worth what silver itself says
    assert grew["scout_bronze_to_silver_seconds_count{}"] == 3
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT sum(extract(epoch FROM processed_at - received_at)) FROM silver.transactions"
                           ).fetchone()
    assert row is not None
    assert grew["scout_bronze_to_silver_seconds_sum{}"] == pytest.approx(float(row[0]))


def test_gold_refresh_exports_rows_and_last_refresh_per_view(database: str) -> None:
    gold_dataset.seed(database)
    with ConnectionPool(database, min_size=1, max_size=2, open=True) as pool:
        assert {r.status for r in refresh_gold(pool)} == {"refreshed"}
    rows = REGISTRY.get_sample_value("scout_gold_view_rows", {"view": "gold.sales_by_store_day"})
    assert rows == 9  # (store, day) pairs of the dataset
    assert REGISTRY.get_sample_value("scout_gold_view_rows", {"view": "gold.dashboard_summary"}) == 1
    with psycopg.connect(database) as conn:
        refreshed_at = conn.execute("SELECT extract(epoch FROM last_refresh_at) FROM ops.gold_refresh_state "
                                    "WHERE view_name = 'gold.sales_by_store_day'").fetchone()
    assert refreshed_at is not None
    stamp = REGISTRY.get_sample_value("scout_gold_last_refresh_timestamp_seconds", {"view": "gold.sales_by_store_day"})
    assert stamp is not None and stamp >= float(refreshed_at[0])
