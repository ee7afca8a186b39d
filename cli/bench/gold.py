"""Gold benchmark: at each size of silver (100k, 1M, 10M line items), the scheduled refresh after a batch of new
transactions, a rebuild of every view from silver, and one raw join pass over silver as the limit of the same
run; then freshness (silver commit -> visible in gold) under the default schedule, with both gold jobs running
as under the scheduler; optionally a plot of the scaling."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from jobs.gold import ANALYTICAL_VIEWS, CORE_VIEWS, GOLD_VIEWS, GoldView, refresh_gold
from jobs.registry import run_job
from scout.settings import Settings

_SEED = """
SELECT setseed(0.42);
INSERT INTO silver.stores (store_id) SELECT 'BS-' || s FROM generate_series(1, 200) s ON CONFLICT DO NOTHING;
INSERT INTO silver.products (sku, name, name_norm, category)
SELECT 'BSKU-' || p, 'product ' || p, 'product ' || p, 'cat ' || (p % 12)
FROM generate_series(1, 5000) p ON CONFLICT DO NOTHING;
"""

# Transaction g has txn_id g (a fresh database) and three lines whose amounts depend on g alone, so its total
# is known at insert time.
_TRANSACTIONS = """
INSERT INTO silver.transactions (store_id, transaction_id, ts, total_amount, item_count, source, event_hash,
                                 bronze_id, received_at)
SELECT 'BS-' || (1 + (g * 7919) %% 200), 'BT-' || g,
       timestamptz '2026-01-01' + make_interval(secs => g * 20 + (g %% 17)),
       (SELECT sum((1 + (g + l) %% 3) * (10 + (g * l) %% 90)) FROM generate_series(1, 3) l),
       3, 'simulator', lpad(to_hex(g), 64, '0'), g, now()
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

# One hash join of all line items with their transactions: the least work any view that reads all of silver
# does, measured in the same run as the raw limit the refresh times are compared with.
_RAW_PASS = """
SELECT count(*), sum(l.line_amount) FROM silver.line_items l JOIN silver.transactions t ON t.txn_id = l.txn_id
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
                conn.execute("UPDATE ops.watermarks SET version = version + 1 WHERE name = 'silver'")
            conn.execute("VACUUM ANALYZE silver.transactions, silver.line_items")
        count = conn.execute("SELECT count(*) FROM silver.line_items").fetchone()
    return int(count[0]) if count else 0


def _settle(dsn: str) -> None:
    """VACUUM ANALYZE the aggregates the first refresh just filled in bulk (at 10M line items, tens of millions
    of rows): what autovacuum does once after such a fill, so the timed cycles measure steady state, not that
    one-off vacuum running beside them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables WHERE schemaname = 'agg'")]
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")  # names from the catalogue, quoted by format(%I)


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _timed(pool: ConnectionPool, views: tuple[GoldView, ...], *, rebuild: bool = False,
           per_view: dict[str, int] | None = None) -> tuple[float, list[str]]:
    """Seconds to refresh ``views`` and the views left behind; each view's own milliseconds into ``per_view``."""
    started = time.perf_counter()
    results = refresh_gold(pool, views=views, rebuild=rebuild, force=rebuild)
    if per_view is not None:
        per_view.update({r.view: r.duration_ms for r in results})
    return time.perf_counter() - started, [r.view for r in results if r.status != "refreshed"]


def _raw_pass(dsn: str, repeats: int) -> dict[str, float]:
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(repeats):
            started = time.perf_counter()
            conn.execute(_RAW_PASS).fetchone()
            times.append(time.perf_counter() - started)
    return _spread(times)


def _at_scale(dsn: str, pool: ConnectionPool, size: int, *, repeats: int, batch: int, say: Any) -> dict[str, Any]:
    """At one size of silver: the raw pass, the scheduled refresh after a new batch (core views, then the
    analytical ones), and a rebuild of every view from silver."""
    have = _grow_to(dsn, size)
    refresh_gold(pool)  # bring gold current before timing
    _settle(dsn)
    say(f"  {have:,} line items: raw pass, {repeats} refresh cycles after {batch:,} new transactions, rebuild ...")
    core: list[float] = []
    analytical: list[float] = []
    cycles: list[dict[str, Any]] = []
    for _ in range(repeats):
        have = _grow_to(dsn, have + 3 * batch)
        views_ms: dict[str, int] = {}
        seconds, behind = _timed(pool, CORE_VIEWS, per_view=views_ms)
        core.append(seconds)
        seconds, behind_analytical = _timed(pool, ANALYTICAL_VIEWS, per_view=views_ms)
        analytical.append(seconds)
        cycles.append({"core_s": core[-1], "analytical_s": analytical[-1], "views_ms": views_ms,
                       "load_average_1m": os.getloadavg()[0]})
        if behind or behind_analytical:
            raise RuntimeError(f"gold bench: views not refreshed after new silver: {behind + behind_analytical}")
    rebuilds = [_timed(pool, GOLD_VIEWS, rebuild=True)[0] for _ in range(1 if size >= 1_000_000 else repeats)]
    return {"line_items": have, "raw_pass_s": _raw_pass(dsn, repeats), "cycle_core_s": _spread(core),
            "cycle_analytical_s": _spread(analytical),
            "cycle_all_s": _spread([c + a for c, a in zip(core, analytical, strict=True)]), "cycles": cycles,
            "rebuild_all_s": _spread(rebuilds)}


def _freshness(dsn: str, pool: ConnectionPool, settings: Settings, seconds: float) -> dict[str, Any]:
    """Commit marker transactions every second while both gold jobs run on their default intervals, each in
    its own thread as under the scheduler; a marker is fresh once gold.sales_by_store_day shows it."""
    stop = threading.Event()

    def job(name: str, interval_s: float) -> None:
        while not stop.is_set():
            run_job(name, pool, settings)
            stop.wait(interval_s)

    threads = [threading.Thread(target=job, args=("gold-refresh", settings.gold_refresh_interval_s), daemon=True),
               threading.Thread(target=job, args=("gold-analytics", settings.gold_analytics_interval_s),
                                daemon=True)]
    for thread in threads:
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
    for thread in threads:
        thread.join(timeout=300)
    lags.sort()
    return {"interval_s": settings.gold_refresh_interval_s, "analytics_interval_s": settings.gold_analytics_interval_s,
            "markers": len(lags),
            "p50_s": statistics.median(lags), "p95_s": lags[int(0.95 * (len(lags) - 1))], "max_s": lags[-1]}


def bench_gold(dsn: str, *, scales: tuple[int, ...] = (100_000, 1_000_000), repeats: int = 3, batch: int = 1_000,
               freshness_s: float = 90, plot: Path | None = None, say: Any = print) -> dict[str, Any]:
    settings = Settings(database_url=SecretStr(dsn))
    result: dict[str, Any] = {"batch_transactions": batch, "scales": {}}
    with ConnectionPool(dsn, min_size=2, max_size=4) as pool:
        for size in sorted(scales):
            say(f"silver with {size:,} line items ...")
            result["scales"][str(size)] = _at_scale(dsn, pool, size, repeats=repeats, batch=batch, say=say)
        say(f"freshness under the default schedule (every {settings.gold_refresh_interval_s:g} s, analytical views "
            f"every {settings.gold_analytics_interval_s:g} s) for {freshness_s:g} s ...")
        result["freshness"] = _freshness(dsn, pool, settings, freshness_s)
    if plot is not None:
        plot_scaling(result, plot)
        result["plot"] = str(plot)
    return result


def plot_scaling(result: dict[str, Any], path: Path) -> None:
    """Refresh times against line items in silver (log-log), with the raw pass of the same run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(result["scales"], key=int)
    x = [result["scales"][s]["line_items"] for s in sizes]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for key, label, style in (
        ("rebuild_all_s", "rebuild of all views from silver", "o-"),
        ("cycle_all_s", f"refresh of all views after {result['batch_transactions']:,} new transactions", "s-"),
        ("cycle_core_s", "  of which the core views (every 10 s)", "^-"),
        ("raw_pass_s", "raw limit: one join pass over silver", "x--"),
    ):
        ax.plot(x, [result["scales"][s][key]["median"] for s in sizes], style, label=label)
    ax.axhline(10, color="grey", linewidth=0.8, linestyle=":", label="target after a batch, up to 10M line items: 10 s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("line items in silver")
    ax.set_ylabel("seconds (median)")
    ax.set_title("scout bench gold --scales: refresh time against silver size")
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
