"""Token-bucket rate limits kept in this process's memory, one bucket per key, with a bounded key count.

Example::

    limiter = RateLimiter(max_keys=10_000)
    wait = limiter.acquire("token:7", rate=50, burst=100)   # 0.0: allowed; else seconds until allowed

Each API process keeps its own buckets: with N uvicorn workers a client can get up to N times the
configured rate, and a restart forgets every bucket.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str, burst: float, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=burst, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:  # forget the least recently used key (it starts full again)
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def _refill(self, bucket: _Bucket, rate: float, burst: float, now: float) -> None:
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now

    def acquire(self, key: str, *, rate: float, burst: float, cost: float = 1.0) -> float:
        """Take ``cost`` from the key's bucket; returns 0.0 when allowed, else the seconds to wait."""
        now = self.clock()
        bucket = self._bucket(key, burst, now)
        self._refill(bucket, rate, burst, now)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / rate

    def blocked_for(self, key: str, *, rate: float, burst: float) -> float:
        """Seconds until the key could take one unit, without taking it (0.0 when it could now)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        self._refill(bucket, rate, burst, self.clock())
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / rate
