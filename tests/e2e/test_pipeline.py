"""The whole pipeline as a user runs it: `scout tokens create`, then `scout api`, `scout worker`,
`scout scheduler` as processes on Apache Kafka and PostgreSQL; resends in any key order land once;
gold agrees with silver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import Pipeline, pipeline_processes


def _reordered(body: dict[str, Any]) -> dict[str, Any]:
    flipped = {k: body[k] for k in reversed(list(body))}
    flipped["items"] = [{k: item[k] for k in reversed(list(item))} for item in body["items"]]
    return flipped


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    with pipeline_processes(settings) as running:
        yield running



async def _post_all(url: str, token: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        async def one(body: dict[str, Any]) -> httpx.Response:
            async with limit:
                return await client.post("/v1/transactions", json=body)

        return await asyncio.gather(*(one(b) for b in bodies))


def _silver(dsn: str) -> tuple[int, Decimal]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*), coalesce(sum(total_amount), 0) FROM silver.transactions").fetchone()
    assert row is not None
    return int(row[0]), Decimal(row[1])


def _gold(dsn: str) -> tuple[int, Decimal]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(orders), 0), coalesce(sum(revenue), 0) FROM gold.sales_by_store_day"
                           ).fetchone()
    assert row is not None
    return int(row[0]), Decimal(row[1])


def _metric(url: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def _samples(url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of ``name`` on a /metrics page, by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = float(sample.value)
    return found


def test_thousand_transactions_with_resends_land_exactly_once(pipeline: Pipeline, settings: Settings) -> None:
    gen = Generator(seed=7)
    originals = [gen.transaction(n) for n in range(1000)]
    resends = originals[:100] + [_reordered(b) for b in originals[100:150]]
    responses = asyncio.run(_post_all(pipeline.url, pipeline.token, originals + resends))
    assert [r.status_code for r in responses] == [202] * 1150, {r.status_code for r in responses}
    hashes = [r.json()["event_hash"] for r in responses]
    assert hashes[1000:1100] == hashes[:100]
    assert hashes[1100:] == hashes[100:150]
    assert [r.json()["duplicate"] for r in responses] == [False] * 1000 + [True] * 150
    expected_total = sum(Decimal(b["total_amount"]) for b in originals)

    dsn = settings.database_dsn()
    count, total = eventually(lambda: _silver(dsn), until=lambda r: r[0] >= 1000, timeout=180,
                              what="1,000 transactions in silver")
    assert (count, total) == (1000, expected_total)
    with psycopg.connect(dsn) as conn:
        bronze = conn.execute("SELECT (SELECT count(*) FROM bronze.transactions), "
                              "(SELECT count(*) FROM bronze.pending)").fetchone()
        quarantined = conn.execute("SELECT count(*) FROM silver.quarantine").fetchone()
        lines = conn.execute("SELECT count(*) FROM silver.line_items").fetchone()
    assert bronze == (1000, 0)
    assert quarantined == (0,)
    assert lines == (sum(len(b["items"]) for b in originals),)
    eventually(lambda: _gold(dsn), until=lambda g: g == (1000, expected_total), timeout=60,
               what="gold to agree with silver after a scheduled refresh")

    # every process reports what it did on its own /metrics
    accepted = _metric(f"{pipeline.url}/metrics/", "scout_ingest_requests_total", {"outcome": "accepted"})
    duplicate = _metric(f"{pipeline.url}/metrics/", "scout_ingest_requests_total", {"outcome": "duplicate"})
    landed = _metric(pipeline.worker_metrics, "scout_stage_rows_total", {"stage": "bronze", "outcome": "inserted"})
    silvered = _metric(pipeline.worker_metrics, "scout_stage_rows_total", {"stage": "silver", "outcome": "inserted"})
    refreshed = _metric(pipeline.scheduler_metrics, "scout_gold_refreshes_total", {"status": "refreshed"})
    assert (accepted, duplicate, landed, silvered) == (1000, 150, 1000, 1000)
    assert refreshed >= 1
    # the worker: how each line item was linked, bronze -> silver latency, and its lag once caught up
    linked = _samples(pipeline.worker_metrics, "scout_link_lines_total")
    assert sum(linked.values()) == lines[0]
    assert _metric(pipeline.worker_metrics, "scout_bronze_to_silver_seconds_count", {}) == 1000
    # exported every SCOUT_CONSUMER_LAG_INTERVAL_S: the first export may predate the traffic (all zeros)
    lag, highwater = eventually(
        lambda: (_samples(pipeline.worker_metrics, "scout_consumer_lag_messages"),
                 _samples(pipeline.worker_metrics, "scout_partition_highwater_offset")),
        until=lambda found: len(found[0]) == settings.topic_partitions and not any(found[0].values())
        and sum(found[1].values()) == 1000,
        timeout=60, what="lag of every partition back to 0 with the broker's end offsets read after the traffic")
    assert {dict(labels)["topic"] for labels in lag} == {settings.topic}
    assert sum(highwater.values()) == 1000  # one message per transaction: resends were answered as duplicates
