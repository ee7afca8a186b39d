"""The API runs as a login that only holds scout_ingest: tokens, idempotency keys and readiness all work."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr

from ingest_api.app import create_app
from ingest_api.idempotency import PgIdempotencyStore
from scout.db import open_async_pool
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.factories import bearer, tx_dict
from tests.services import Postgres


@pytest.fixture
def ingest_login(postgres: Postgres, settings: Settings) -> Iterator[str]:
    """A DSN for a fresh login role that is a member of scout_ingest and nothing else."""
    name = f"api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE scout_ingest").format(sql.Identifier(name)))
    dsn = settings.database_dsn()
    try:
        yield dsn.replace("postgres@", f"{name}@", 1)
    finally:
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_api_needs_only_the_scout_ingest_grants(settings: Settings, ingest_login: str) -> None:
    assert "postgres@" in settings.database_dsn(), "the test database is reached as the owner"
    ensure_topics(settings)
    auth = bearer(settings.database_dsn())  # created by the owner, as `scout tokens create` is
    api_settings = settings.model_copy(update={"database_url": SecretStr(ingest_login)})
    with TestClient(create_app(api_settings), headers=auth) as client:
        ready = client.get("/readyz")
        first = client.post("/v1/transactions", json=tx_dict(1), headers={"Idempotency-Key": "least-privilege"})
        replay = client.post("/v1/transactions", json=tx_dict(1), headers={"Idempotency-Key": "least-privilege"})
        batch = client.post("/v1/transactions:batch", json=[tx_dict(2)])
    assert ready.status_code == 200, ready.text
    assert first.status_code == 202, first.text
    assert replay.headers["idempotent-replayed"] == "true"
    assert batch.status_code == 200 and batch.json()["accepted"] == 1
    with psycopg.connect(settings.database_dsn()) as conn:
        used = conn.execute("SELECT last_used_at IS NOT NULL FROM ops.device_tokens").fetchone()
        conn.execute("UPDATE ops.idempotency_keys SET created_at = now() - interval '25 hours'")
    assert used == (True,)
    assert asyncio.run(_purge(api_settings)) == 1  # the API's periodic purge, with the same grants


async def _purge(settings: Settings) -> int:
    pool = await open_async_pool(settings, name="purge-test")
    try:
        return await PgIdempotencyStore(pool, retention_s=86_400, abandoned_s=30).purge_expired(batch=1)
    finally:
        await pool.close()
