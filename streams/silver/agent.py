"""The silver loop, run as a Faust task on every worker: drain bronze into silver in batches.

Any number of workers may run it at once: rows are claimed with FOR UPDATE SKIP LOCKED.
A batch that fails with a terminal error is retried row by row so one poison row is
quarantined (reason ``processing_error``) and the rest go through.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust

from observability.metrics import (
    BRONZE_TO_SILVER,
    LINKED_LINES,
    QUALITY_WARNINGS,
    QUARANTINED,
    STAGE_BATCH_SECONDS,
    STAGE_BATCH_SIZE,
    STAGE_ROWS,
)
from quality.rules import Thresholds
from streams.resources import StreamResources
from streams.retry import retry_transient
from streams.silver.catalogue import CatalogueCache
from streams.silver.step import StepResult, drain_once

log = logging.getLogger(__name__)


async def drain(resources: StreamResources, limit: int, limits: Thresholds,
                cache: CatalogueCache | None = None) -> StepResult:
    """One batch with transient retries; on a terminal error, isolate row by row."""
    settings = resources.settings

    async def once(n: int) -> StepResult:
        pool = await resources.pool()
        async with pool.connection() as conn:
            catalogue = await cache.current(conn) if cache is not None else None
            return await drain_once(conn, limit=n, limits=limits, catalogue=catalogue)

    try:
        return await retry_transient(lambda: once(limit), stage="silver", max_backoff=settings.retry_max_backoff_s)
    except Exception as exc:
        log.error("silver: batch failed terminally (%r); isolating row by row", exc)
    total = StepResult(0, 0, 0, 0, 0)
    for _ in range(limit):
        one = await retry_transient(lambda: once(1), stage="silver", max_backoff=settings.retry_max_backoff_s)
        if one.claimed == 0:
            break
        total = total + one
    return total


def record(result: StepResult) -> None:
    """Export what one silver batch did (rows, quarantine reasons, link methods, bronze -> silver latency)."""
    STAGE_ROWS.labels("silver", "inserted").inc(result.inserted)
    STAGE_ROWS.labels("silver", "quarantined").inc(result.quarantined)
    STAGE_ROWS.labels("silver", "already_present").inc(result.already_present)
    for reason, count in result.quarantine_reasons.items():
        QUARANTINED.labels(reason).inc(count)
    for method, count in result.link_methods.items():
        LINKED_LINES.labels(method).inc(count)
    for rule, count in result.warnings.items():
        QUALITY_WARNINGS.labels(rule).inc(count)
    for seconds in result.latencies:
        BRONZE_TO_SILVER.observe(max(seconds, 0.0))


async def silver_loop(resources: StreamResources) -> None:
    """``silver_concurrency`` drain loops sharing one catalogue: while one batch waits on PostgreSQL the
    next is planned (SKIP LOCKED keeps their rows apart, exactly as between workers)."""
    settings = resources.settings
    limits = Thresholds.from_settings(settings)
    cache = CatalogueCache(threshold=settings.link_fuzzy_threshold, refresh_s=settings.catalogue_refresh_s)
    await asyncio.gather(*(_drain_loop(resources, limits, cache) for _ in range(settings.silver_concurrency)))


async def _drain_loop(resources: StreamResources, limits: Thresholds, cache: CatalogueCache) -> None:
    settings = resources.settings
    while True:
        started = time.perf_counter()
        try:
            result = await drain(resources, settings.silver_batch_size, limits, cache)
        except Exception:  # a bug, not data: keep the loop alive, never spin
            log.exception("silver: unexpected error; retrying after the idle interval")
            await asyncio.sleep(settings.silver_idle_interval_s)
            continue
        if result.claimed:
            STAGE_BATCH_SIZE.labels("silver").observe(result.claimed)
            STAGE_BATCH_SECONDS.labels("silver").observe(time.perf_counter() - started)
            record(result)
        if result.claimed < settings.silver_batch_size:
            await asyncio.sleep(settings.silver_idle_interval_s)


def register_silver(app: faust.App, resources: StreamResources) -> None:
    @app.task
    async def silver() -> None:
        await silver_loop(resources)

    del silver
