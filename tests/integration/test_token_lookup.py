"""Token look-ups from PostgreSQL: concurrent requests share one query, and each sees every earlier revocation."""

from __future__ import annotations

import asyncio

from psycopg_pool import AsyncConnectionPool

from ingest_api.tokens import TokenRecord, TokenStore, create_token, revoke_token, token_hash


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
