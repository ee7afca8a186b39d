"""The API's in-memory helpers with a settable clock: token buckets and the recent-hash memory."""

from __future__ import annotations

import pytest

from ingest_api.publisher import Ack
from ingest_api.ratelimit import RateLimiter
from ingest_api.recent import RecentHashes


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert [limiter.acquire("t", rate=2, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("t", rate=2, burst=3) == pytest.approx(0.5)  # one unit refills in 1/rate s
    clock.now += 0.5
    assert limiter.acquire("t", rate=2, burst=3) == 0.0
    clock.now += 100  # refills only up to the burst
    assert [limiter.acquire("t", rate=2, burst=3) for _ in range(4)][-1] > 0


def test_buckets_are_per_key_and_bounded() -> None:
    limiter = RateLimiter(max_keys=2, clock=Clock())
    assert limiter.acquire("a", rate=1, burst=1) == 0.0
    assert limiter.acquire("a", rate=1, burst=1) > 0
    assert limiter.acquire("b", rate=1, burst=1) == 0.0
    assert limiter.acquire("c", rate=1, burst=1) == 0.0  # evicts "a", the least recently used
    assert limiter.acquire("a", rate=1, burst=1) == 0.0  # forgotten: starts full again


def test_blocked_for_does_not_consume() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert limiter.blocked_for("x", rate=1, burst=2) == 0.0
    limiter.acquire("x", rate=1, burst=2)
    limiter.acquire("x", rate=1, burst=2)
    assert limiter.blocked_for("x", rate=1, burst=2) == pytest.approx(1.0)
    assert limiter.blocked_for("x", rate=1, burst=2) == pytest.approx(1.0)
    clock.now += 1
    assert limiter.blocked_for("x", rate=1, burst=2) == 0.0


def test_recent_hashes_are_bounded_and_expire() -> None:
    clock = Clock()
    recent = RecentHashes(max_size=2, ttl_s=10, clock=clock)
    recent.remember("a", Ack(0, 1))
    recent.remember("b", Ack(0, 2))
    assert recent.get("a") == Ack(0, 1)
    recent.remember("c", Ack(1, 3))  # evicts the oldest insert, "a"
    assert (recent.get("a"), recent.get("b"), len(recent)) == (None, Ack(0, 2), 2)
    clock.now += 11
    assert recent.get("c") is None and len(recent) == 1


def test_recent_hashes_can_be_off() -> None:
    recent = RecentHashes(max_size=0, ttl_s=10)
    recent.remember("a", Ack(0, 1))
    assert recent.get("a") is None
