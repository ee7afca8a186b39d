"""Gold benchmark: refresh time of every view at 100k and 1M line items, and freshness (silver commit ->
visible in gold) under the default schedule, with the scheduler job running as in production."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from jobs.gold import refresh_gold
from jobs.registry import run_job
from scout.settings import Settings

_SEED = """
SELECT setseed(0.42);
INSERT INTO silver.stores (store_id) SELECT 'BS-' || s FROM generate_series(1, 200) s ON CONFLICT DO NOTHING;
INSERT INTO silver.products (sku, name, name_norm, category)
SELECT 'BSKU-' || p, 'product ' || p, 'product ' || p, 'cat ' || (p % 12)
FROM generate_series(1, 5000) p ON CONFLICT DO NOTHING;
"""

_TRANSACTIONS = """
INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, item_count, source, event_hash,
                                 bronze_id, received_at)
SELECT 'BS-' || (1 + (g * 7919) %% 200), 'BT-' || g,
       timestamptz '2026-01-01' + make_interval(secs => g * 20 + (g %% 17)),
       0, 3, 'simulator', lpad(to_hex(g), 64, '0'), g, now()
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) g;
"""

_LINES = """
INSERT INTO silver.line_items (txn_id, line_no, product_key, product_id, product_name, qty, unit_price, line_amount,
                               link_method, link_confidence)
SELECT t.txn_id, l, p.product_key, p.sku, p.name, 1 + (t.txn_id + l) %% 3, 10 + (t.txn_id * l) %% 90,
       (1 + (t.txn_id + l) %% 3) * (10 + (t.txn_id * l) %% 90), 'sku', 1
FROM silver.transactions t
CROSS JOIN generate_series(1, 3) l
JOIN silver.products p ON p.product_key = 1 + ((t.txn_id * 31 + l * 97) %% 5000)
WHERE t.txn_id > %(after)s;
"""

_TOTALS = """
UPDATE silver.transactions t SET total_amount = s.total
FROM (SELECT txn_id, sum(line_amount) AS total FROM silver.line_items WHERE txn_id > %(after)s GROUP BY txn_id) s
WHERE t.txn_id = s.txn_id;
"""


MARKER_EVERY_S = 1.0  # one marker transaction a second while the schedule runs


def _grow_to(dsn: str, line_items: int) -> int:
    """Add synthetic transactions (3 lines each) until silver holds ``line_items`` lines."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_SEED)
        row = conn.execute("SELECT coalesce(max(txn_id), 0), count(*) FROM silver.transactions").fetchone()
        after, have = (int(row[0]), int(row[1])) if row else (0, 0)
        want = line_items // 3
        if want > have:
            with conn.transaction():
                conn.execute(_TRANSACTIONS, {"start": have + 1, "stop": want})
                conn.execute(_LINES, {"after": after})
                conn.execute(_TOTALS, {"after": after})
                conn.execute("UPDATE ops.watermarks SET version = version + 1 WHERE name = 'silver'")
            conn.execute("VACUUM ANALYZE silver.transactions, silver.line_items")
        count = conn.execute("SELECT count(*) FROM silver.line_items").fetchone()
    return int(count[0]) if count else 0


def _refresh_all(pool: ConnectionPool, repeats: int) -> dict[str, Any]:
    totals: list[float] = []
    per_view: dict[str, list[int]] = {}
    for _ in range(repeats):
        started = time.perf_counter()
        for result in refresh_gold(pool, force=True):
            per_view.setdefault(result.view, []).append(result.duration_ms)
        totals.append(time.perf_counter() - started)
    return {"seconds": {"median": statistics.median(totals), "min": min(totals), "max": max(totals)},
            "per_view_ms_median": {v: statistics.median(ms) for v, ms in per_view.items()}}


def _freshness(dsn: str, pool: ConnectionPool, settings: Settings, seconds: float) -> dict[str, Any]:
    """Commit marker transactions every second while the gold-refresh job runs on its default interval."""
    stop = threading.Event()

    def scheduler() -> None:
        while not stop.is_set():
            run_job("gold-refresh", pool, settings)
            stop.wait(settings.gold_refresh_interval_s)

    thread = threading.Thread(target=scheduler, daemon=True)
    thread.start()
    lags: list[float] = []
    pending: dict[str, float] = {}
    marker = 0
    deadline = time.monotonic() + seconds
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline or pending:
            if time.monotonic() < deadline:
                marker += 1
                store = f"FRESH-{marker}"
                with conn.transaction():
                    conn.execute("INSERT INTO silver.stores (store_id) VALUES (%s)", [store])
                    conn.execute(
                        "INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, item_count,"
                        " source, event_hash, bronze_id, received_at) VALUES (%s, 'F', now(), 1, 0, 'api',"
                        " lpad(md5(%s), 64, '0'), 0, now())", [store, store])
                    conn.execute("UPDATE ops.watermarks SET version = version + 1 WHERE name = 'silver'")
                pending[store] = time.monotonic()
            visible = {r[0] for r in conn.execute(
                "SELECT store_id FROM gold.sales_by_store_day WHERE store_id = ANY(%s)", [list(pending)])}
            for store in visible:
                lags.append(time.monotonic() - pending.pop(store))
            time.sleep(MARKER_EVERY_S)
    stop.set()
    thread.join(timeout=120)
    lags.sort()
    return {"interval_s": settings.gold_refresh_interval_s, "markers": len(lags),
            "p50_s": statistics.median(lags), "p95_s": lags[int(0.95 * (len(lags) - 1))], "max_s": lags[-1]}


def bench_gold(dsn: str, *, sizes: tuple[int, ...] = (100_000, 1_000_000), repeats: int = 3,
               freshness_s: float = 60, say: Any = print) -> dict[str, Any]:
    settings = Settings(database_url=dsn)  # type: ignore[arg-type]
    result: dict[str, Any] = {"refresh_all": {}}
    with ConnectionPool(dsn, min_size=1, max_size=4) as pool:
        for size in sizes:
            say(f"silver with {size:,} line items ...")
            have = _grow_to(dsn, size)
            say(f"refreshing every gold view ({repeats} times) ...")
            result["refresh_all"][str(size)] = {"line_items": have, **_refresh_all(pool, repeats)}
        say(f"freshness under the default {settings.gold_refresh_interval_s:g} s schedule for {freshness_s:g} s ...")
        result["freshness"] = _freshness(dsn, pool, settings, freshness_s)
    return result
