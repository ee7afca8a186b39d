"""The batch endpoint and resends on real Kafka: mixed good and bad items answered one by one, NDJSON,
and a resend in another key order that is one event (on the topic, and in bronze when produced twice)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from ingest_api.app import create_app
from scout.contract import Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from streams.bronze.decode import BronzeRow, Position, decode
from streams.bronze.sink import land
from tests.factories import bearer, topic_messages, tx_dict


def _reordered(body: dict[str, Any]) -> dict[str, Any]:
    flipped = {k: body[k] for k in reversed(list(body))}
    flipped["items"] = [{k: item[k] for k in reversed(list(item))} for item in body["items"]]
    return flipped


def _counter(outcome: str) -> float:
    return REGISTRY.get_sample_value("scout_ingest_requests_total", {"endpoint": "batch", "outcome": outcome}) or 0


@pytest.fixture
def ready(settings: Settings) -> Settings:
    ensure_topics(settings)
    return settings


@pytest.fixture
def client(ready: Settings) -> Iterator[TestClient]:
    auth = bearer(ready.database_dsn(), stores=["STORE-001"])
    with TestClient(create_app(ready), headers=auth) as test_client:
        yield test_client


def test_mixed_batch_answers_every_item_and_produces_only_the_good(client: TestClient, ready: Settings) -> None:
    good1, good2 = tx_dict(1), tx_dict(2, qty=3)
    batch = [good1, tx_dict(3, total="1.005"), tx_dict(4, store="STORE-999"), good2, good1, _reordered(good1),
             "not an object"]
    before = {outcome: _counter(outcome) for outcome in ("accepted", "duplicate", "rejected")}
    response = client.post("/v1/transactions:batch", json=batch)
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "accepted", "duplicate",
                                              "duplicate", "rejected"]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 2, 3)
    assert results[1]["reason"] == "validation_error" and results[1]["details"][0]["field"] == "total_amount"
    assert results[2]["reason"] == "store_forbidden" and results[2]["event_hash"] is None
    assert results[6]["reason"] == "validation_error" and results[6]["details"][0]["field"] == "(body)"
    first_hash = Transaction.model_validate(good1).event_hash()
    assert results[0]["event_hash"] == results[4]["event_hash"] == results[5]["event_hash"] == first_hash
    assert (results[4]["partition"], results[4]["offset"]) == (results[0]["partition"], results[0]["offset"])
    assert {outcome: _counter(outcome) - n for outcome, n in before.items()} == {
        "accepted": 2, "duplicate": 2, "rejected": 3}
    on_topic = [m["event_hash"] for _, m in topic_messages(ready)]
    assert sorted(on_topic) == sorted([first_hash, Transaction.model_validate(good2).event_hash()])


def test_ndjson_batch_with_a_broken_line(client: TestClient, ready: Settings) -> None:
    lines = [orjson.dumps(tx_dict(1)), b"{broken", b"", orjson.dumps(tx_dict(2))]
    response = client.post("/v1/transactions:batch", content=b"\r\n".join(lines) + b"\n",
                           headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, "accepted"), (1, "rejected"), (2, "accepted")]
    assert results[1]["reason"] == "validation_error"
    # a batch and a single POST hash alike, and the API remembers hashes across both endpoints
    single = client.post("/v1/transactions", json=_reordered(tx_dict(2)))
    assert single.status_code == 202 and single.json()["duplicate"] is True
    assert single.json()["event_hash"] == results[2]["event_hash"]
    assert len(topic_messages(ready)) == 2


def test_resend_in_another_key_order_is_one_event(ready: Settings) -> None:
    body = tx_dict(5, customer_segment="family", payment_method="cash")
    auth = bearer(ready.database_dsn())
    with TestClient(create_app(ready), headers=auth) as client:
        first = client.post("/v1/transactions", json=body)
        resend = client.post("/v1/transactions", json=_reordered(body))
    assert first.status_code == resend.status_code == 202
    assert resend.json()["event_hash"] == first.json()["event_hash"]
    assert (first.json()["duplicate"], resend.json()["duplicate"]) == (False, True)
    assert len(topic_messages(ready)) == 1
    # another API process (nothing remembered) produces the resend again: bronze still lands it once
    forgetful = ready.model_copy(update={"recent_hash_cache_size": 0})
    with TestClient(create_app(forgetful), headers=auth) as client:
        again = client.post("/v1/transactions", json=_reordered(body))
    assert again.status_code == 202 and again.json()["duplicate"] is False
    messages = topic_messages(ready)
    assert [m["event_hash"] for _, m in messages] == [first.json()["event_hash"]] * 2
    assert _land_in_bronze(ready, [m for _, m in messages]) == 1


def _land_in_bronze(settings: Settings, envelopes: list[dict[str, Any]]) -> int:
    rows = [decode(orjson.dumps(e), key=b"k", position=Position(settings.topic, 0, n)) for n, e in enumerate(envelopes)]
    assert all(isinstance(row, BronzeRow) for row in rows)

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(settings.database_dsn()) as conn:
            await land(conn, rows, [])  # type: ignore[arg-type]

    asyncio.run(run())
    with psycopg.connect(settings.database_dsn()) as conn:
        row = conn.execute("SELECT count(*) FROM bronze.transactions").fetchone()
    assert row is not None
    return int(row[0])
