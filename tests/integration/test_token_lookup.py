"""Token look-ups from PostgreSQL: concurrent requests share one query, and each sees every earlier revocation;
the token table announces its changes, and the per-process cache follows them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest_api.token_cache import APPLICATION_NAME, CHANNEL, TokenCache
from ingest_api.tokens import TokenRecord, TokenStore, create_token, revoke_token, token_hash
from scout.db import q


class CountingStore(TokenStore):
    """The real store, counting the queries it sends."""

    queries = 0

    async def _fetch(self, hashes: list[str]) -> dict[str, TokenRecord]:
        self.queries += 1
        return await super()._fetch(hashes)


def test_concurrent_lookups_share_one_query_and_each_gets_its_own_token(database: str) -> None:
    ingest = create_token(database, name="pos-1", scopes=["ingest"], store_ids=None)
    reader = create_token(database, name="dash", scopes=["read"], store_ids=["STORE-001"])
    wanted = [ingest.secret, reader.secret, "sct_" + "U" * 43] * 20

    async def run() -> tuple[list[TokenRecord | None], int]:
        async with AsyncConnectionPool(database, min_size=1, max_size=2, open=False) as pool:
            store = CountingStore(pool)
            found = await asyncio.gather(*(store.lookup(token_hash(s)) for s in wanted))
            return found, store.queries

    found, queries = asyncio.run(run())
    assert [r.name if r else None for r in found] == ["pos-1", "dash", None] * 20
    assert found[1] is not None and found[1].store_ids == frozenset({"STORE-001"})
    assert queries < len(wanted) / 10


def test_a_lookup_after_a_revocation_sees_it(database: str) -> None:
    token = create_token(database, name="pos-2", scopes=["ingest"], store_ids=None)

    async def run() -> tuple[TokenRecord | None, TokenRecord | None]:
        async with AsyncConnectionPool(database, min_size=1, max_size=2, open=False) as pool:
            store = TokenStore(pool)
            before = await store.lookup(token_hash(token.secret))
            assert revoke_token(database, token.id)
            return before, await store.lookup(token_hash(token.secret))

    before, after = asyncio.run(run())
    assert before is not None and before.revoked_at is None
    assert after is not None and after.revoked_at is not None


def test_the_token_table_announces_a_change_but_not_a_last_use(database: str) -> None:
    used = create_token(database, name="pos-3", scopes=["ingest"], store_ids=None)
    revoked = create_token(database, name="pos-4", scopes=["ingest"], store_ids=None)
    with psycopg.connect(database, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with psycopg.connect(database, autocommit=True) as conn:
            assert conn.execute(q("token_touch"), {"id": used.id}).rowcount == 1
        assert revoke_token(database, revoked.id)
        (note,) = list(listener.notifies(timeout=5, stop_after=1))  # in commit order: the touch said nothing
    assert (note.channel, note.payload) == (CHANNEL, token_hash(revoked.secret))


async def _until(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not met in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def test_the_cache_answers_from_memory_and_follows_revocations_also_after_its_listener_was_killed(
        database: str) -> None:
    first = create_token(database, name="pos-5", scopes=["ingest"], store_ids=None)
    second = create_token(database, name="pos-6", scopes=["ingest"], store_ids=None)

    async def run() -> None:
        async with AsyncConnectionPool(database, min_size=1, max_size=2, open=False) as pool:
            store = CountingStore(pool)
            cache = TokenCache(store, conninfo=database, ttl_s=60, reconnect_s=0.05)
            await cache.start()
            try:
                await _until(lambda: cache.listening, 10)
                for _ in range(5):
                    assert (await cache.lookup(token_hash(first.secret))) is not None
                assert store.queries == 1
                assert revoke_token(database, first.id)
                revoked_in = await _until(lambda: token_hash(first.secret) not in cache._entries, 1.0)
                record = await cache.lookup(token_hash(first.secret))
                assert record is not None and record.revoked_at is not None, revoked_in

                assert (await cache.lookup(token_hash(second.secret))) is not None
                with psycopg.connect(database, autocommit=True) as conn:
                    killed = conn.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                                          "FROM pg_stat_activity WHERE application_name = %s",
                                          [APPLICATION_NAME]).fetchone()
                assert killed == (1,)
                await _until(lambda: not cache.listening, 5)
                queries = store.queries
                await cache.lookup(token_hash(second.secret))
                assert store.queries == queries + 1 or cache.listening  # down: read per request
                await _until(lambda: cache.listening, 10)
                assert (await cache.lookup(token_hash(second.secret))) is not None
                assert revoke_token(database, second.id)
                await _until(lambda: token_hash(second.secret) not in cache._entries, 1.0)
                record = await cache.lookup(token_hash(second.secret))
                assert record is not None and record.revoked_at is not None
            finally:
                await cache.stop()

    asyncio.run(run())
