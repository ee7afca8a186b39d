"""Helpers of the quality tests: transactions that break each rule, and putting them through silver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from quality.rules import STREAM_RULES, Thresholds
from scout.settings import Settings
from streams.bronze.sink import land
from streams.silver.step import StepResult, drain_once
from tests.factories import bronze_row, tx_dict

ALL_WARNINGS = {rule.name: "warning" for rule in STREAM_RULES}


def key(body: dict[str, Any]) -> str:
    return f"{body['store_id']}/{body['transaction_id']}"


def breaking(n: int, rule: str) -> dict[str, Any]:
    """A transaction (id TXN-n) that breaks ``rule`` and no other rule."""
    if rule == "negative_amount":
        return tx_dict(n, price="-25.00", total="-50.00")
    if rule == "negative_quantity":
        return tx_dict(n, qty=-2, price="0.00", total="0.00")
    if rule == "over_threshold":
        return tx_dict(n, qty=1000, price="20.00")
    if rule == "line_amount_mismatch":
        body = tx_dict(n, total="49.00")
        body["items"][0]["line_amount"] = "49.00"
        return body
    if rule == "line_sum_mismatch":
        return tx_dict(n, total="99.00")
    if rule == "future_timestamp":
        return tx_dict(n, ts=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    raise ValueError(rule)


def samples(start: int = 1) -> list[dict[str, Any]]:
    """Clean transactions, one breaker per stream rule, a double breaker and edge cases either side."""
    now = datetime.now(UTC)
    bodies = [tx_dict(start), tx_dict(start + 1, qty=3)]
    bodies += [breaking(start + 10 + i, rule.name) for i, rule in enumerate(STREAM_RULES)]
    computed = tx_dict(start + 30, qty=-2, total="-50.00")  # no line_amount: computed -50.00, two rules
    del computed["items"][0]["line_amount"]
    bodies += [
        computed,
        tx_dict(start + 31, qty=1, price="101.00", total="100.00"),  # exactly 1% off: allowed
        tx_dict(start + 32, qty=1, price="101.01", total="100.00"),  # just over 1%
        tx_dict(start + 33, qty=1, price="10000.00"),  # at the threshold: allowed
        tx_dict(start + 34, ts=(now + timedelta(seconds=120)).isoformat()),  # within the clock skew
        tx_dict(start + 35, ts=(now + timedelta(seconds=900)).isoformat()),  # beyond it
    ]
    return bodies


def seed(dsn: str, bodies: list[dict[str, Any]], *, offset: int = 0) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            await land(conn, [bronze_row(b, offset=offset + i) for i, b in enumerate(bodies)], [])

    asyncio.run(run())


def drain(dsn: str, limits: Thresholds) -> StepResult:
    async def run() -> StepResult:
        total = StepResult(0, 0, 0, 0, 0)
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            while (r := await drain_once(conn, limit=50, limits=limits)).claimed:
                total = total + r
        return total

    return asyncio.run(run())


def feed(dsn: str, bodies: list[dict[str, Any]], settings: Settings, *, offset: int = 0) -> StepResult:
    """Land ``bodies`` in bronze and drain them through the real silver step with ``settings``' rules."""
    seed(dsn, bodies, offset=offset)
    return drain(dsn, Thresholds.from_settings(settings))


def quality_settings(dsn: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": dsn, "quality_min_lines": 1, "alert_webhook_timeout_s": 0.5,
                              "alert_webhook_attempts": 2}
    values.update(overrides)
    return Settings(**values)


def pool(dsn: str) -> ConnectionPool:
    return ConnectionPool(dsn, min_size=1, max_size=4, open=True)


def rows(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
