"""One definition per rule: the silver step's predicate and the batch SQL (run by Great Expectations) give the
same verdict on the same transactions; critical breakers are quarantined with the rule's name, warnings land
and are counted (table and metric)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import psycopg
from prometheus_client import REGISTRY

from quality.rules import STREAM_RULES, Thresholds, evaluate
from quality.suites import plan_checks, run_checks
from scout.contract import Transaction
from streams.resources import StreamResources
from streams.silver.agent import silver_loop
from tests.integration.quality_support import ALL_WARNINGS, feed, quality_settings, rows, samples, seed

EXPECTED = {  # transaction ids of samples() breaking each rule
    "negative_amount": {"TXN-000011", "TXN-000031"},
    "negative_quantity": {"TXN-000012", "TXN-000031"},
    "over_threshold": {"TXN-000013"},
    "line_amount_mismatch": {"TXN-000014"},
    "line_sum_mismatch": {"TXN-000015", "TXN-000033"},
    "future_timestamp": {"TXN-000016", "TXN-000036"},
}


def _ids(keys: set[str]) -> set[str]:
    return {k.split("/", 1)[1] for k in keys}


def test_stream_predicates_and_batch_sql_agree_on_every_sample(database: str) -> None:
    settings = quality_settings(database, quality_severities=ALL_WARNINGS)  # everything lands in silver
    bodies = samples()
    result = feed(database, bodies, settings)
    assert (result.inserted, result.quarantined) == (len(bodies), 0)
    limits = Thresholds.from_settings(settings)

    # 1. the Python predicates, re-run on what silver holds (reference time: when it was received)
    python: dict[str, set[str]] = defaultdict(set)
    for payload, received_at in rows(database, "SELECT b.payload::text, t.received_at FROM silver.transactions t "
                                               "JOIN bronze.transactions b ON b.id = t.bronze_id"):
        tx = Transaction.model_validate_json(payload)
        for violation in evaluate(tx, limits, now=received_at):
            python[violation.rule.name].add(tx.transaction_id)
    # 2. what the silver step recorded when they landed
    recorded: dict[str, set[str]] = defaultdict(set)
    for rule, txn in rows(database, "SELECT w.rule, t.transaction_id FROM silver.transaction_warnings w "
                                    "JOIN silver.transactions t USING (txn_id)"):
        recorded[rule].add(txn)
    # 3. the batch SQL, run as Great Expectations unexpected-rows checks
    since = datetime.now(UTC) - timedelta(hours=1)
    checks = [c for c in plan_checks(limits, since=since, gold_views=[], suite="silver") if c.rule.stream]
    batch = {r.check.rule.name: _ids({f["key"] for f in r.failing})
             for r in run_checks(database, checks, since=since, sample_size=200)}

    assert dict(python) == dict(recorded) == {k: v for k, v in batch.items() if v} == EXPECTED
    assert set(batch) == {rule.name for rule in STREAM_RULES}
    assert dict(result.warnings) == {rule: len(ids) for rule, ids in EXPECTED.items()}


def test_critical_breakers_are_quarantined_with_the_rules_reason(database: str) -> None:
    settings = quality_settings(database)
    bodies = samples()
    feed(database, bodies, settings)
    held = dict(rows(database, "SELECT transaction_id, reasons FROM silver.quarantine"))
    expected: dict[str, set[str]] = defaultdict(set)
    for rule, ids in EXPECTED.items():
        for txn in ids:
            expected[txn].add(rule)
    assert {txn: set(reasons) for txn, reasons in held.items()} == expected
    landed = {t for (t,) in rows(database, "SELECT transaction_id FROM silver.transactions")}
    assert landed == {"TXN-000001", "TXN-000002", "TXN-000032", "TXN-000034", "TXN-000035"}
    assert rows(database, "SELECT count(*) FROM silver.transaction_warnings") == [(0,)]

    # the batch checks see them in the quarantine: each rule fails with the quarantined keys
    limits = Thresholds.from_settings(settings)
    since = datetime.now(UTC) - timedelta(hours=1)
    checks = [c for c in plan_checks(limits, since=since, gold_views=[], suite="silver") if c.rule.stream]
    for result in run_checks(database, checks, since=since, sample_size=200):
        assert not result.success and result.error is None, result
        assert _ids({f["key"] for f in result.failing}) == EXPECTED[result.check.rule.name]
        assert all(f["detail"].startswith("quarantined #") for f in result.failing)


def _warnings_metric(rule: str) -> float:
    return REGISTRY.get_sample_value("scout_quality_warnings_total", {"rule": rule}) or 0.0


def test_warnings_land_and_are_counted_by_the_silver_loop(database: str) -> None:
    settings = quality_settings(database, quality_severities={"over_threshold": "warning",
                                                             "future_timestamp": "warning"},
                                silver_idle_interval_s=0.05)
    before = {rule: _warnings_metric(rule) for rule in EXPECTED}
    seed(database, samples())

    async def run_loop_until_drained() -> None:
        resources = StreamResources(settings)
        task = asyncio.create_task(silver_loop(resources))
        deadline = time.monotonic() + 60
        try:
            async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
                while True:
                    cur = await conn.execute("SELECT count(*) FROM bronze.pending")
                    if (await cur.fetchone()) == (0,):
                        return
                    assert time.monotonic() < deadline, "the silver loop did not drain bronze"
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await resources.close()

    asyncio.run(run_loop_until_drained())
    counted = dict(rows(database, "SELECT rule, count(*) FROM silver.transaction_warnings GROUP BY rule"))
    assert counted == {"over_threshold": 1, "future_timestamp": 2}
    landed = {t for (t,) in rows(database, "SELECT transaction_id FROM silver.transactions")}
    assert {"TXN-000013", "TXN-000016", "TXN-000036"} <= landed
    assert {rule: _warnings_metric(rule) - before[rule] for rule in counted} == counted
    quarantined = {t for (t,) in rows(database, "SELECT transaction_id FROM silver.quarantine")}
    assert "TXN-000013" not in quarantined and "TXN-000011" in quarantined
