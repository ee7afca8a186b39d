"""Keep a worker's in-memory product Catalogue in step with silver.products (incremental loads), and let it
learn receipt words from the names recent lines printed beside a known SKU.

Example::

    cache = CatalogueCache(threshold=80, refresh_s=5)
    catalogue = await cache.current(conn)     # loads new products at most every refresh_s seconds
"""

from __future__ import annotations

import time

from psycopg import AsyncConnection

from scout.db import q
from streams.silver.linking import Catalogue

LEARN_EVERY_S = 300.0
LEARN_FROM_LINES = 100_000  # the most recent SKU-linked lines read to learn from


async def learn_from_lines(conn: AsyncConnection, catalogue: Catalogue) -> int:
    """Teach ``catalogue`` the names recent lines printed beside a catalogue SKU; returns pairs read."""
    cur = await conn.execute(q("sku_confirmed_names"), {"limit": LEARN_FROM_LINES})
    rows = await cur.fetchall()
    for name, key in rows:
        catalogue.learn(name, int(key))
    return len(rows)


class CatalogueCache:
    def __init__(self, *, threshold: float, refresh_s: float) -> None:
        self.catalogue = Catalogue(threshold=threshold)
        self.refresh_s = refresh_s
        self._last_key = 0
        self._checked = float("-inf")
        self._learned = float("-inf")

    async def current(self, conn: AsyncConnection) -> Catalogue:
        if time.monotonic() - self._checked >= self.refresh_s:
            cur = await conn.execute(q("products_since"), {"after": self._last_key})
            for key, _sku, name in await cur.fetchall():
                self.catalogue.add(int(key), name)
                self._last_key = max(self._last_key, int(key))
            self._checked = time.monotonic()
        if time.monotonic() - self._learned >= LEARN_EVERY_S:
            await learn_from_lines(conn, self.catalogue)
            self._learned = time.monotonic()
        return self.catalogue
