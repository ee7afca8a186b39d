"""Bronze retention of one old day: the row-by-row delete (the retention job before migration 0027) against
dropping the day's partition, on the same rows; and how long migration 0027 takes to convert that bronze.

Each figure has its own database: ``old`` holds bronze as migrations 1-26 built it (unpartitioned) with one day
of processed rows received 40 days ago; ``convert`` is a copy of it (CREATE DATABASE ... TEMPLATE) that migration
0027 converts; ``new`` holds the same rows in their day's partition. Rows are processed (none queued for silver,
none quarantined), so every row may go.

Example::

    figures = bench_retention(services.fresh_database, rows=1_000_000, say=print)
    figures["drop_partition_s"], figures["row_by_row_s"]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from sql import load_migrations

BATCH = 10_000  # SCOUT_RETENTION_BATCH_SIZE's default
# The retention job's statement before migration 0027 (sql/queries/ops.sql then), repeated until it deletes
# fewer than BATCH rows, one transaction each.
ROW_BY_ROW = """
DELETE FROM bronze.transactions
WHERE id IN (
    SELECT b.id
    FROM bronze.transactions b
    WHERE b.received_at < now() - make_interval(days => 30)
      AND NOT EXISTS (SELECT 1 FROM bronze.pending p WHERE p.bronze_id = b.id)
      AND NOT EXISTS (SELECT 1 FROM silver.quarantine z WHERE z.bronze_id = b.id AND z.replayed_at IS NULL)
    ORDER BY b.id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
"""
# One day of bronze rows: a transaction of three lines each, as the API lands them (about 600 bytes of jsonb).
SEED = """
INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at,
                                 kafka_topic, kafka_partition, kafka_offset)
SELECT md5(g::text) || md5('x' || g), 'api', 'STORE-' || (g %% 50), 'TXN-' || g,
       jsonb_build_object('transaction_id', 'TXN-' || g, 'store_id', 'STORE-' || (g %% 50),
                          'ts', to_char(%(day)s::timestamptz + make_interval(secs => g %% 86400),
                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                          'total_amount', '31.50', 'currency', 'EUR', 'payment_method', 'card',
                          'items', jsonb_build_array(
                              jsonb_build_object('sku', 'SKU-' || (g %% 997), 'name', 'Oat milk 1L', 'qty', 2,
                                                 'unit_price', '2.50', 'line_total', '5.00'),
                              jsonb_build_object('sku', 'SKU-' || (g %% 991), 'name', 'Rye bread', 'qty', 1,
                                                 'unit_price', '4.00', 'line_total', '4.00'),
                              jsonb_build_object('sku', 'SKU-' || (g %% 983), 'name', 'Coffee beans 500g', 'qty', 1,
                                                 'unit_price', '22.50', 'line_total', '22.50'))),
       %(day)s::timestamptz + make_interval(secs => (g %% 86400)::double precision), 'pos.transactions.v1',
       g %% 6, g / 6
FROM generate_series(1, %(rows)s) AS g
"""


def _size(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = 'bronze' AND c.relkind IN ('r', 'p')").fetchone()
    return int(row[0]) if row else 0


def _seed(dsn: str, day: date, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SEED, {"day": datetime.combine(day, datetime.min.time(), tzinfo=UTC), "rows": rows})
        conn.execute("DELETE FROM bronze.pending")  # processed by silver
        conn.execute("VACUUM ANALYZE")


def _old_schema(admin_dsn: str, name: str) -> str:
    """A database as migrations 1-26 left it (the bench applies them without the runner's bookkeeping)."""
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"'.encode())
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    with psycopg.connect(dsn, autocommit=True) as conn:
        for migration in load_migrations():
            if migration.version < 27:
                with conn.transaction():
                    conn.execute(migration.sql.encode())
    return dsn


def bench_retention(admin_dsn: str, fresh_database: Callable[[str], str], *, rows: int = 1_000_000,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    day = datetime.now(UTC).date() - timedelta(days=40)
    (migration,) = [m for m in load_migrations() if m.version == 27]

    say(f"retention: {rows:,} bronze rows of {day} in the unpartitioned bronze (migrations 1-26) ...")
    old = _old_schema(admin_dsn, "bench_retention_old")
    _seed(old, day, rows)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:  # the same rows, for the conversion
        conn.execute(b'DROP DATABASE IF EXISTS "bench_retention_convert"')
        conn.execute(b'CREATE DATABASE "bench_retention_convert" TEMPLATE "bench_retention_old"')
    convert = admin_dsn.rsplit("/", 1)[0] + "/bench_retention_convert"

    say("  migration 0027 on it (the rows become the legacy partition) ...")
    with psycopg.connect(convert, autocommit=True) as conn:
        load = os.getloadavg()
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(migration.sql.encode())
        migrate_s = time.perf_counter() - started

    say("  the retention job's row-by-row delete (before) ...")
    with psycopg.connect(old, autocommit=True) as conn:
        size_before = _size(conn)
        batches, deleted, started = 0, 0, time.perf_counter()
        while True:
            n = conn.execute(ROW_BY_ROW, {"batch": BATCH}).rowcount
            batches, deleted = batches + 1, deleted + max(n, 0)
            if n < BATCH:
                break
        row_by_row_s = time.perf_counter() - started
        size_after_delete = _size(conn)

    say("  the same day in its partition, dropped (after) ...")
    new = fresh_database("bench_retention_new")
    with psycopg.connect(new, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE bronze.transactions_{day:%Y%m%d} PARTITION OF bronze.transactions FOR VALUES "
                     f"FROM ('{day} 00:00+00') TO ('{day + timedelta(days=1)} 00:00+00')".encode())
    _seed(new, day, rows)
    with psycopg.connect(new, autocommit=True) as conn:
        size_partitioned = _size(conn)
        # The part of the drop that grows with the day: forgetting its hashes (done before the exclusive lock),
        # timed alone in a transaction rolled back; the rest of drop_day is the detach and drop.
        started = time.perf_counter()
        with conn.transaction(force_rollback=True):
            conn.execute(f"DELETE FROM bronze.event_hashes h USING bronze.transactions_{day:%Y%m%d} b "
                         "WHERE h.event_hash = b.event_hash".encode())
        hashes_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = conn.execute("SELECT bronze.drop_day(%s)", [day]).fetchone()
        drop_s = time.perf_counter() - started
        left = conn.execute("SELECT (SELECT count(*) FROM bronze.transactions), "
                            "(SELECT count(*) FROM bronze.event_hashes)").fetchone()
        size_after_drop = _size(conn)
    assert outcome == ("dropped",) and left == (0, 0), (outcome, left)
    assert deleted == rows, deleted
    # seconds unrounded: a small day is deleted or converted in milliseconds, which two decimals would call 0
    figures = {
        "rows": rows, "day": day.isoformat(), "load_average_1_5_15": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "row_by_row_s": row_by_row_s, "row_by_row_batches": batches, "row_by_row_batch": BATCH,
        "row_by_row_rows_s": round(rows / row_by_row_s),
        "drop_partition_s": drop_s, "speedup": round(row_by_row_s / drop_s, 1),
        "forget_hashes_alone_s": hashes_s,
        "migration_0027_s": migrate_s,
        "bronze_bytes": {"unpartitioned_seeded": size_before, "after_row_by_row_delete": size_after_delete,
                         "partitioned_seeded": size_partitioned, "after_drop": size_after_drop},
    }
    say(f"  row by row {row_by_row_s:.1f} s, drop partition {drop_s:.2f} s, migration 0027 {migrate_s:.1f} s")
    return figures
