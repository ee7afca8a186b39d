"""The bronze agent notices offsets it never saw (a skip by the consumer) and seeks back to them once."""

from __future__ import annotations

from streams.bronze.gaps import OffsetGuard


def test_contiguous_batches_need_no_seek() -> None:
    guard = OffsetGuard()
    assert guard.after_batch(1, [("p0", 10), ("p0", 11), ("p1", 3)], {"p0": 10, "p1": 3}) == {}
    assert guard.after_batch(1, [("p0", 12), ("p1", 4), ("p1", 5)], {"p0": 10, "p1": 3}) == {}


def test_a_batch_past_the_committed_offset_or_with_a_hole_is_sought_back_once() -> None:
    guard = OffsetGuard()
    assert guard.after_batch(1, [("p0", 15), ("p0", 16)], {"p0": 10}) == {"p0": 10}  # 10..14 never seen
    assert guard.after_batch(1, [("p0", 17)], {"p0": 10}) == {}  # the same skip is not sought again
    assert guard.after_batch(1, [("p0", 10), ("p0", 11)], {"p0": 10}) == {}  # the redelivery
    assert guard.after_batch(1, [("p1", 0), ("p1", 1), ("p1", 5)], {}) == {"p1": 2}  # a hole inside a batch


def test_a_new_generation_starts_from_the_committed_offsets_again() -> None:
    guard = OffsetGuard()
    guard.after_batch(1, [("p0", 50)], {"p0": 50})
    assert guard.after_batch(2, [("p0", 40)], {"p0": 40}) == {}  # rewound by the rebalance: not a skip
    assert guard.after_batch(3, [("p0", 60)], {"p0": 41}) == {"p0": 41}
    assert guard.after_batch(3, [("p2", 7)], {"p2": None}) == {}  # never committed: nothing to compare with
