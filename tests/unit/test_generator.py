"""The simulator's generator: deterministic per seed, contract-valid, and clean under the guardrails."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from quality.rules import Thresholds, evaluate
from scout.contract import Transaction
from scout.settings import Settings
from simulator.generator import MAX_BASKET, Generator

LIMITS = Thresholds.from_settings(Settings())


def test_same_seed_same_transactions() -> None:
    first, again = Generator(seed=7), Generator(seed=7)
    assert [first.transaction(n) for n in range(50)] == [again.transaction(n) for n in range(50)]
    assert first.products == again.products


def test_nth_transaction_independent_of_order() -> None:
    gen = Generator(seed=7)
    forward = [gen.transaction(n) for n in range(20)]
    backward = [gen.transaction(n) for n in reversed(range(20))]
    assert forward == list(reversed(backward))


def test_different_seed_different_stream() -> None:
    a, b = Generator(seed=1), Generator(seed=2)
    assert [a.transaction(n) for n in range(10)] != [b.transaction(n) for n in range(10)]
    assert len({Transaction.model_validate(a.transaction(n)).event_hash() for n in range(200)}) == 200


def test_transactions_valid_and_break_no_critical_rule() -> None:
    gen = Generator(seed=42, start=datetime(2025, 1, 1, tzinfo=UTC))
    for n in range(500):
        tx = Transaction.model_validate(gen.transaction(n))
        assert tx.store_id in gen.stores
        assert 0 < tx.total_amount <= MAX_BASKET
        broken = [v.rule.name for v in evaluate(tx, LIMITS, now=tx.ts) if v.rule.severity == "critical"]
        assert broken == [], (n, broken)


def test_timestamps_move_forward() -> None:
    gen = Generator(seed=3)
    stamps = [Transaction.model_validate(gen.transaction(n)).ts for n in range(100)]
    assert stamps[0] >= gen.start
    assert all(later > earlier for earlier, later in itertools.pairwise(stamps))


def test_a_live_generator_starts_now_and_advances_at_its_rate() -> None:
    before = datetime.now(UTC)
    live = Generator.live(7, rate=20)
    assert before <= live.timestamp(0) <= datetime.now(UTC)
    assert live.timestamp(20) - live.timestamp(0) == timedelta(seconds=1)
    assert live.transaction(3)["ts"] == live.timestamp(3).isoformat()
    assert Generator(7).transaction(3)["items"] == live.transaction(3)["items"]  # same seed, same baskets
