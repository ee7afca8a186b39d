"""The landed-offset rules: how a partition's next offset moves through a batch, and what a hole leads to."""

from __future__ import annotations

from streams.bronze.offsets import Hole, HoleTracker, extend


def test_next_offset_moves_through_a_batch_that_continues_it() -> None:
    assert extend(10, [10, 11, 12]) == (13, None)
    assert extend(10, [12, 10, 11]) == (13, None)  # order inside a batch does not matter


def test_redelivered_offsets_below_the_next_one_change_nothing() -> None:
    assert extend(10, [4, 5, 9]) == (10, None)
    assert extend(10, [8, 9, 10, 11]) == (12, None)  # a redelivery that overlaps and continues


def test_a_batch_past_the_next_offset_is_a_hole_and_the_next_offset_stays() -> None:
    assert extend(10, [15, 16]) == (10, 15)


def test_a_hole_inside_a_batch_stops_the_run_at_the_hole() -> None:
    assert extend(10, [10, 11, 14, 15]) == (12, 14)


def test_duplicated_offsets_in_a_batch_count_once() -> None:
    assert extend(0, [0, 0, 1, 1, 2]) == (3, None)


def test_a_hole_is_sought_at_once_then_again_only_after_the_retry_delay_then_the_worker_restarts() -> None:
    tracker = HoleTracker(retry_s=5, max_seeks=3)
    hole = Hole("t", 0, 10, 15)
    assert tracker.observe(hole, 0) == "seek"
    assert tracker.observe(hole, 1) is None  # batches fetched before the seek still show it
    assert tracker.observe(hole, 6) == "seek"
    assert tracker.observe(hole, 12) == "seek"
    assert tracker.observe(hole, 18) == "restart"


def test_a_new_hole_on_the_partition_starts_over_with_a_seek() -> None:
    tracker = HoleTracker(retry_s=5, max_seeks=1)
    assert tracker.observe(Hole("t", 0, 10, 15), 0) == "seek"
    assert tracker.observe(Hole("t", 0, 40, 44), 1) == "seek"  # the first one was mended
    assert tracker.observe(Hole("t", 1, 10, 15), 1) == "seek"  # another partition is its own
    assert tracker.observe(Hole("t", 0, 40, 44), 7) == "restart"
