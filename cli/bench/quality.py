"""Quality benchmark: how long the scheduled Great Expectations suites take on 1M line items in the window."""

from __future__ import annotations

import statistics
import time
from typing import Any

from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from cli.bench.gold import _grow_to
from jobs.gold import refresh_gold
from quality.runner import run_quality
from scout.settings import Settings


def bench_quality(dsn: str, *, line_items: int = 1_000_000, repeats: int = 3, say: Any = print) -> dict[str, Any]:
    settings = Settings(database_url=SecretStr(dsn))
    say(f"silver with {line_items:,} line items in the recent window ...")
    have = _grow_to(dsn, line_items)
    result: dict[str, Any] = {"line_items": have, "interval_s": settings.quality_interval_s, "suites": {}}
    with ConnectionPool(dsn, min_size=1, max_size=4) as pool:
        refresh_gold(pool, force=True)
        for suite in ("silver", "gold"):
            say(f"suite {suite}: one cold run, then {repeats} warm ...")
            times = []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                run_quality(pool, settings, suite=suite)
                times.append(time.perf_counter() - started)
            result["suites"][suite] = {"first_s": times[0], "warm_median_s": statistics.median(times[1:]),
                                       "warm_max_s": max(times[1:])}
    return result
