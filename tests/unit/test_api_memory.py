"""Every per-process memory of the API has a bound, and the memory it holds stops growing once it is full."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc

from fastapi.testclient import TestClient

from ingest_api.app import create_app
from ingest_api.auth import Authenticator
from ingest_api.middleware import HttpMetrics
from ingest_api.publisher import Ack, Publisher
from ingest_api.ratelimit import RateLimiter
from ingest_api.recent import RecentHashes
from ingest_api.tokens import TokenRecord
from scout.settings import Settings
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens
from tests.unit.payloads import payload


def _hash(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_the_recent_hash_memory_stops_growing_once_full() -> None:
    """Full after 20,000 hashes; its table settles once more over the next 20,000 (evictions leave holes until
    the dict is rebuilt), then holds: 60,000 more hashes add nothing."""
    recent = RecentHashes(max_size=20_000, ttl_s=600)
    tracemalloc.start()
    try:
        for n in range(40_000):
            recent.remember(_hash(n), Ack(n % 3, n))
        settled, _ = tracemalloc.get_traced_memory()
        for n in range(40_000, 100_000):
            recent.remember(_hash(n), Ack(n % 3, n))
        later, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(recent) == 20_000
    assert later <= settled * 1.01, (settled, later)


def test_rate_limit_buckets_token_touches_and_partition_choices_are_bounded() -> None:
    limiter = RateLimiter(max_keys=100)
    for n in range(1_000):
        limiter.acquire(f"token:{n}", rate=1, burst=1)
    assert len(limiter._buckets) == 100

    class Tokens:
        async def lookup(self, token_hash_hex: str) -> None:
            return None

        async def touch(self, token_id: int) -> None:
            return None

    authenticator = Authenticator(Settings(kafka_bootstrap="127.0.0.1:1", database_url=None), Tokens())

    async def touch_many() -> None:
        for n in range(100_500):
            record = TokenRecord(id=n, name="t", scopes=frozenset({"ingest"}), device_id=None, store_ids=None,
                                 rate_limit_per_s=None, expires_at=None, revoked_at=None)
            await authenticator._touch(record)

    asyncio.run(touch_many())
    assert len(authenticator._touched) <= 100_001

    publisher = Publisher(Settings(kafka_bootstrap="127.0.0.1:1", database_url=None))
    for n in range(100_500):
        publisher._partition(f"STORE-{n}".encode(), [0, 1, 2])
    assert len(publisher._partitions) <= 100_001


def test_http_metrics_keep_one_entry_per_route_method_and_status() -> None:
    tokens = FakeTokens()
    app = create_app(Settings(kafka_bootstrap="127.0.0.1:1", database_url=None), publisher=FakePublisher(),  # type: ignore[arg-type]
                     tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    secret = tokens.add()
    with TestClient(app) as client:
        for n in range(50):
            client.post("/v1/transactions", json=payload(transaction_id=f"T-{n}"),
                        headers={"Authorization": f"Bearer {secret}"})
            client.get(f"/no/such/path/{n}")
            client.get("/healthz")
    middleware = app.middleware_stack
    while not isinstance(middleware, HttpMetrics):
        middleware = middleware.app  # type: ignore[union-attr]
    assert set(middleware._counted) == {("/v1/transactions", "POST", 202), ("<unmatched>", "GET", 404),
                                        ("/healthz", "GET", 200)}
