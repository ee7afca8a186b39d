"""Resources the stream processes share, opened lazily inside the running event loop."""

from __future__ import annotations

import asyncio

from psycopg_pool import AsyncConnectionPool

from scout.db import open_async_pool
from scout.settings import Settings


class StreamResources:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await open_async_pool(self.settings, name="streams", min_size=1, max_size=4)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
