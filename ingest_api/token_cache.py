"""Device tokens kept in memory per API process, dropped as soon as PostgreSQL announces a change (LISTEN).

Example::

    cache = TokenCache(TokenStore(pool), conninfo=settings.database_dsn(), ttl_s=5.0)
    await cache.start()             # the listener connects in the background
    await cache.lookup(hash_hex)    # from memory while the listener is up, else from PostgreSQL
    await cache.stop()

A trigger on ``ops.device_tokens`` (migration 0023) notifies ``scout_device_tokens`` with the token's hash at
the commit of any change but its last use; the listener, on its own connection, drops that token. The cache
is used only while the listener is up: from its LISTEN until its connection fails, every look-up that found a
token may keep it ``ttl_s`` seconds. While the listener is down (not yet connected, or its connection was
lost) nothing is cached and every request reads its token from PostgreSQL, as without a cache; the cache
starts empty each time the listener is back. A look-up that was in flight while any notification arrived
is answered but not kept (its row may predate the change). The TTL bounds what a listener that did not
notice its connection died (a silent network) could miss. Unknown tokens are never kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg

from ingest_api.tokens import TokenRecord, TokenStore
from observability.metrics import TOKEN_LISTENER_UP

log = logging.getLogger(__name__)

CHANNEL = "scout_device_tokens"
APPLICATION_NAME = "scout-api-token-listener"


class TokenCache:
    """A ``TokenLookup`` over ``store`` that answers from memory while its listener is up."""

    def __init__(self, store: TokenStore, *, conninfo: str, ttl_s: float, max_size: int = 10_000,
                 reconnect_s: float = 0.5, max_reconnect_s: float = 10.0) -> None:
        self.store = store
        self.conninfo = conninfo
        self.ttl_s = ttl_s
        self.max_size = max_size
        self.reconnect_s = reconnect_s
        self.max_reconnect_s = max_reconnect_s
        self._entries: dict[str, tuple[float, TokenRecord]] = {}
        self._generation = 0  # moves on every notification and every listener state change
        self._listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._listening

    async def lookup(self, token_hash_hex: str) -> TokenRecord | None:
        if self._listening:
            entry = self._entries.get(token_hash_hex)
            if entry is not None and time.monotonic() - entry[0] < self.ttl_s:
                return entry[1]
        generation = self._generation
        listening = self._listening
        record = await self.store.lookup(token_hash_hex)
        if record is not None and listening and generation == self._generation:
            if len(self._entries) >= self.max_size:
                self._entries.clear()
            self._entries[token_hash_hex] = (time.monotonic(), record)
        return record

    async def touch(self, token_id: int) -> None:
        await self.store.touch(token_id)

    def changed(self, token_hash_hex: str) -> None:
        """A token's row changed: forget it, and keep no look-up that was in flight."""
        self._generation += 1
        self._entries.pop(token_hash_hex, None)

    def _set_listening(self, up: bool) -> None:
        self._generation += 1
        self._entries.clear()
        if up != self._listening:
            self._listening = up
            TOKEN_LISTENER_UP.set(1 if up else 0)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="token-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._set_listening(False)

    async def _listen(self) -> None:
        delay = self.reconnect_s
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, application_name=APPLICATION_NAME,
                    keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._set_listening(True)
                    log.info("tokens: listening for changes; tokens are kept up to %.1fs", self.ttl_s)
                    delay = self.reconnect_s
                    async for note in conn.notifies():
                        self.changed(note.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("tokens: the change listener is down, every request reads its token; "
                            "next try in %.1fs: %r", delay, exc)
            finally:
                self._set_listening(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_reconnect_s)
