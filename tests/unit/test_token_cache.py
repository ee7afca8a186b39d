"""The per-process token cache: kept only while its listener is up, dropped on a change, never kept from a
look-up that a change overtook, never past its TTL, never for an unknown token."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ingest_api.token_cache import TokenCache
from ingest_api.tokens import TokenRecord


def record(revoked: bool = False) -> TokenRecord:
    return TokenRecord(id=1, name="pos-1", scopes=frozenset({"ingest"}), device_id=None, store_ids=None,
                       rate_limit_per_s=None, expires_at=None, revoked_at=datetime.now(UTC) if revoked else None)


class Store:
    """Counts look-ups; ``gate`` (when set) holds each look-up until released."""

    def __init__(self) -> None:
        self.rows: dict[str, TokenRecord] = {"a" * 64: record()}
        self.lookups = 0
        self.gate: asyncio.Event | None = None

    async def lookup(self, token_hash_hex: str) -> TokenRecord | None:
        self.lookups += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.rows.get(token_hash_hex)

    async def touch(self, token_id: int) -> None:
        return None


def cache_over(store: Store, *, ttl_s: float = 60.0, listening: bool = True) -> TokenCache:
    cache = TokenCache(store, conninfo="", ttl_s=ttl_s)  # type: ignore[arg-type]
    if listening:
        cache._set_listening(True)
    return cache


def test_kept_while_listening_and_dropped_on_its_change() -> None:
    store = Store()
    cache = cache_over(store)

    async def run() -> list[TokenRecord | None]:
        found = [await cache.lookup("a" * 64), await cache.lookup("a" * 64)]
        assert store.lookups == 1
        store.rows["a" * 64] = record(revoked=True)
        cache.changed("a" * 64)
        found.append(await cache.lookup("a" * 64))
        assert store.lookups == 2
        return found

    first, second, after = asyncio.run(run())
    assert first is second and first is not None and first.revoked_at is None
    assert after is not None and after.revoked_at is not None


def test_every_request_reads_its_token_while_the_listener_is_down() -> None:
    store = Store()
    cache = cache_over(store)

    async def run() -> None:
        await cache.lookup("a" * 64)
        cache._set_listening(False)  # the connection was lost: whatever was kept may have missed a change
        for _ in range(3):
            await cache.lookup("a" * 64)
        assert store.lookups == 4
        cache._set_listening(True)  # back: starts empty
        await cache.lookup("a" * 64)
        await cache.lookup("a" * 64)
        assert store.lookups == 5

    asyncio.run(run())


def test_a_lookup_overtaken_by_a_change_is_answered_but_not_kept() -> None:
    store = Store()
    cache = cache_over(store)

    async def run() -> None:
        store.gate = asyncio.Event()
        in_flight = asyncio.create_task(cache.lookup("a" * 64))
        await asyncio.sleep(0)
        cache.changed("b" * 64)  # any change while the row was being read
        store.gate.set()
        assert await in_flight is not None
        await cache.lookup("a" * 64)
        assert store.lookups == 2

    asyncio.run(run())


def test_ttl_and_unknown_tokens() -> None:
    store = Store()

    async def run() -> None:
        expired = cache_over(store, ttl_s=0.0)
        await expired.lookup("a" * 64)
        await expired.lookup("a" * 64)
        assert store.lookups == 2
        cache = cache_over(store)
        assert await cache.lookup("c" * 64) is None
        assert await cache.lookup("c" * 64) is None
        assert store.lookups == 4

    asyncio.run(run())


def test_bounded() -> None:
    store = Store()
    cache = cache_over(store)
    cache.max_size = 3
    store.rows.update({str(n) * 64: record() for n in range(10)})

    async def run() -> None:
        for n in range(10):
            await cache.lookup(str(n) * 64)
        assert len(cache._entries) <= 3

    asyncio.run(run())


