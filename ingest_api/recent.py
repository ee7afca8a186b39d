"""A bounded, per-process memory of event hashes Kafka acknowledged, to answer resends as probable duplicates.

Example::

    recent = RecentHashes(max_size=100_000, ttl_s=600)
    recent.remember(event_hash, Ack(partition=0, offset=41))
    recent.get(event_hash)        # Ack(0, 41): already on the topic; None: unknown (or forgotten)

Only a hint: bronze's UNIQUE (event_hash) decides what lands once. A hash is remembered only after
Kafka acknowledged it, so answering a later resend without producing it again keeps the promise of
the 202.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from ingest_api.publisher import Ack


class RecentHashes:
    def __init__(self, *, max_size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, Ack]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, event_hash: str) -> Ack | None:
        entry = self._entries.get(event_hash)
        if entry is None:
            return None
        stored_at, ack = entry
        if self.clock() - stored_at > self.ttl_s:
            del self._entries[event_hash]
            return None
        return ack

    def remember(self, event_hash: str, ack: Ack) -> None:
        if self.max_size <= 0:
            return
        self._entries[event_hash] = (self.clock(), ack)
        self._entries.move_to_end(event_hash)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
