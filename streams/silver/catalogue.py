"""Keep a worker's in-memory product Catalogue in step with silver.products (incremental loads).

Example::

    cache = CatalogueCache(threshold=80, refresh_s=5)
    catalogue = await cache.current(conn)     # loads new products at most every refresh_s seconds
"""

from __future__ import annotations

import time

from psycopg import AsyncConnection

from scout.db import q
from streams.silver.linking import Catalogue


class CatalogueCache:
    def __init__(self, *, threshold: float, refresh_s: float) -> None:
        self.catalogue = Catalogue(threshold=threshold)
        self.refresh_s = refresh_s
        self._last_key = 0
        self._checked = float("-inf")

    async def current(self, conn: AsyncConnection) -> Catalogue:
        if time.monotonic() - self._checked >= self.refresh_s:
            cur = await conn.execute(q("products_since"), {"after": self._last_key})
            for key, _sku, name in await cur.fetchall():
                self.catalogue.add(int(key), name)
                self._last_key = max(self._last_key, int(key))
            self._checked = time.monotonic()
        return self.catalogue
