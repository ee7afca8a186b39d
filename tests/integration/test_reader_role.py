"""scout_reader reads every gold relation and monitoring view and nothing else, and can write nothing: checked
over the catalogue, so a table added later is covered without editing this test."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql


def _relations(dsn: str, schemas: tuple[str, ...]) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 1, 2", [list(schemas)]
        ).fetchall()
    return [(str(s), str(r)) for s, r in rows]


def _as_reader(dsn: str, statement: sql.Composable | str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET ROLE scout_reader")
        conn.execute(statement)  # type: ignore[arg-type]


def test_reader_reads_every_gold_relation(database: str) -> None:
    gold = _relations(database, ("gold",))
    assert len(gold) >= 10  # nine materialized views and the refresh status view
    for schema, name in gold:
        _as_reader(database, sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(schema, name)))


def test_reader_reads_every_monitoring_view(database: str) -> None:
    monitor = _relations(database, ("monitor",))
    assert {n for _, n in monitor} >= {"v_pipeline_throughput", "v_ingest_latency", "v_gold_freshness",
                                       "v_etl_performance"}
    for schema, name in monitor:
        _as_reader(database, sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(schema, name)))


def test_reader_cannot_read_bronze_silver_or_ops(database: str) -> None:
    hidden = _relations(database, ("bronze", "silver", "ops"))
    assert {"silver.transactions", "bronze.transactions", "ops.job_runs", "ops.watermarks"} <= {
        f"{s}.{n}" for s, n in hidden}
    for schema, name in hidden:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as_reader(database, sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(schema, name)))


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO silver.stores (store_id) VALUES ('S')",
        "UPDATE ops.watermarks SET version = version + 1",
        "DELETE FROM bronze.transactions",
        "INSERT INTO ops.job_runs (job_name, started_at, status) VALUES ('x', now(), 'running')",
        "REFRESH MATERIALIZED VIEW gold.sales_by_category_day",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY gold.dashboard_summary",
        "SELECT ops.refresh_materialized_view('gold.sales_by_store_day', true)",
        "CREATE TABLE gold.scratch (a int)",
        "CREATE VIEW gold.scratch AS SELECT 1",
        "CREATE VIEW monitor.scratch AS SELECT 1",
        "DROP VIEW monitor.v_pipeline_throughput",
        "CREATE TABLE public.scratch (a int)",
        "CREATE TABLE ops.scratch (a int)",
        "DROP MATERIALIZED VIEW gold.sales_by_category_day",
        "ALTER MATERIALIZED VIEW gold.store_segments RENAME TO x",
        "TRUNCATE silver.line_items",
        "CREATE SCHEMA scratch",
        "GRANT SELECT ON silver.transactions TO scout_reader",
    ],
)
def test_reader_cannot_write_anything(database: str, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _as_reader(database, statement)
