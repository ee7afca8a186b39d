"""All migrations on an empty database: roles, and grants as they act; the runner is strict (objects: test_schema)."""

from __future__ import annotations

import psycopg
import pytest

from scout.migrate import MigrationChanged, migrate, status
from sql import load_migrations
from tests.services import Postgres


def test_all_migrations_apply_to_an_empty_database_once(postgres: Postgres) -> None:
    dsn = postgres.fresh_database(migrated=False)
    applied = migrate(dsn)
    assert applied == [m.version for m in load_migrations()]
    assert migrate(dsn) == []  # idempotent
    assert all(m.applied for m in status(dsn))
    # Every table, view, index and grant they build: tests/integration/test_schema.py against sql/schema.sql.
    # Roles belong to the server, not the database, so a schema dump does not show them:
    with psycopg.connect(dsn) as conn:
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'scout_%'")}
    assert {"scout_ingest", "scout_pipeline", "scout_reader"} <= roles


def test_a_changed_applied_migration_is_refused(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE ops.schema_migrations SET checksum = repeat('0', 64) WHERE version = 2")
    with pytest.raises(MigrationChanged, match="0002"):
        migrate(database)


def _as_role(dsn: str, role: str, statement: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET ROLE {role}")
        conn.execute(statement)


BRONZE_INSERT = (
    "INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at, "
    "kafka_topic, kafka_partition, kafka_offset) VALUES (repeat('a', 64), 'api', 'S', 'T', '{}', now(), 't', 0, 0)"
)


TOKEN_INSERT = (
    "INSERT INTO ops.device_tokens (name, token_hash, token_prefix, scopes) VALUES ('x', repeat('b', 64), 'sct_', "
    "ARRAY['admin'])"
)
IDEMPOTENCY_INSERT = (
    "INSERT INTO ops.idempotency_keys (owner, key, fingerprint) VALUES ('token:1', 'k', repeat('c', 64))"
)


@pytest.mark.parametrize(
    ("role", "statement", "allowed"),
    [
        ("scout_reader", "SELECT count(*) FROM gold.sales_by_store_day", True),
        ("scout_reader", "SELECT count(*) FROM silver.transactions", False),
        ("scout_reader", "SELECT count(*) FROM bronze.transactions", False),
        ("scout_reader", "SELECT count(*) FROM ops.job_runs", False),
        ("scout_reader", "CREATE TABLE gold.x (a int)", False),
        ("scout_reader", "SELECT count(*) FROM monitor.v_pipeline_throughput", True),
        ("scout_reader", "SELECT count(*) FROM monitor.v_etl_performance", True),
        ("scout_ingest", BRONZE_INSERT, True),
        ("scout_ingest", "SELECT count(*) FROM silver.transactions", False),
        ("scout_ingest", "INSERT INTO silver.stores (store_id) VALUES ('S')", False),
        ("scout_ingest", "SELECT id, token_hash, scopes, store_ids FROM ops.device_tokens", True),
        ("scout_ingest", "UPDATE ops.device_tokens SET last_used_at = now()", True),
        ("scout_ingest", "UPDATE ops.device_tokens SET revoked_at = NULL", False),
        ("scout_ingest", TOKEN_INSERT, False),
        ("scout_ingest", "DELETE FROM ops.device_tokens", False),
        ("scout_ingest", IDEMPOTENCY_INSERT, True),
        ("scout_ingest", "DELETE FROM ops.idempotency_keys", True),
        ("scout_ingest", "SELECT count(*) FROM ops.job_runs", False),
        ("scout_reader", "SELECT count(*) FROM ops.device_tokens", False),
        ("scout_pipeline", "SELECT count(*) FROM ops.device_tokens", False),
        ("scout_pipeline", "INSERT INTO silver.stores (store_id) VALUES ('S')", True),
        ("scout_pipeline", "SELECT ops.refresh_materialized_view('gold.sales_by_category_day', true)", True),
        ("scout_pipeline", "CREATE TABLE silver.x (a int)", False),
        ("scout_pipeline", "ALTER TABLE silver.stores ADD COLUMN x int", False),
        ("scout_pipeline", "DROP MATERIALIZED VIEW gold.sales_by_category_day", False),
        ("scout_pipeline", "SELECT ops.refresh_materialized_view('silver.transactions', true)", False),
    ],
)
def test_role_grants(database: str, role: str, statement: str, allowed: bool) -> None:
    if allowed:
        _as_role(database, role, statement)
    else:
        with pytest.raises(psycopg.Error):
            _as_role(database, role, statement)
