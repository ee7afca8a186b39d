"""The pure half of bronze's offset protocol: where a claimed partition starts, which landings are fenced,
and the liveness alarm."""

from __future__ import annotations

import pytest

from streams.bronze.decode import storable
from streams.bronze.errors import TopicRecreated
from streams.bronze.liveness import Liveness
from streams.bronze.offsets import Move, Start, fenced, start_position


def test_a_landed_offset_inside_the_broker_range_is_where_reading_starts() -> None:
    assert start_position(17, earliest=0, end=40) == Start(17)
    assert start_position(40, earliest=0, end=40) == Start(40)  # everything landed: wait for the next record
    assert start_position(0, earliest=0, end=0) == Start(0)


def test_records_deleted_before_they_landed_are_reported_as_a_range() -> None:
    assert start_position(10, earliest=30, end=90) == Start(30, expired=(10, 29))


def test_a_landed_offset_past_the_broker_end_is_refused_with_what_to_do() -> None:
    with pytest.raises(TopicRecreated, match=r"t\[2\] ends at offset 5 .* landed up to 9.*scout bronze reset-offsets"):
        start_position(9, earliest=0, end=5, topic="t", partition=2)


def test_a_landing_is_fenced_when_epoch_or_offset_moved_or_the_row_is_gone() -> None:
    moves = [Move(0, epoch=3, expected=10, next_offset=20), Move(1, epoch=3, expected=5, next_offset=9),
             Move(2, epoch=1, expected=0, next_offset=4), Move(3, epoch=1, expected=0, next_offset=1)]
    found = {0: (10, 3), 1: (5, 4), 2: (2, 1)}  # 1: claimed by another worker; 2: moved on; 3: no row
    assert fenced(moves, found) == [1, 2, 3]
    assert fenced(moves[:1], found) == []


def test_liveness_flags_a_partition_with_records_waiting_and_an_offset_that_does_not_move() -> None:
    alarm = Liveness(timeout_s=30)
    assert alarm.observe(0, {0: 100, 1: 50}, {0: 120, 1: 50}) == set()
    assert alarm.observe(29, {0: 100, 1: 50}, {0: 130, 1: 60}) == set()
    assert alarm.observe(30, {0: 100, 1: 50}, {0: 130, 1: 60}) == {0}  # partition 1 only started waiting at 29
    assert alarm.observe(40, {0: 100, 1: 50}, {0: 130, 1: 60}) == set() and alarm.stalled == {0}
    alarm.landed(0, 130)
    assert alarm.observe(45, {0: 130, 1: 50}, {0: 130, 1: 60}) == set() and alarm.stalled == set()
    assert alarm.observe(59, {0: 130, 1: 50}, {0: 130, 1: 60}) == {1}


def test_liveness_off_and_idle_partitions_never_alarm() -> None:
    assert Liveness(timeout_s=0).observe(1e6, {0: 1}, {0: 9}) == set()
    alarm = Liveness(timeout_s=1)
    assert alarm.observe(0, {0: 9}, {0: 9}) == set() and alarm.observe(100, {0: 9}, {0: 9}) == set()


@pytest.mark.parametrize(("text", "stored"), [
    ("schema: a\x00b: Extra inputs are not permitted", "schema: a\\x00b: Extra inputs are not permitted"),
    ("key \ud800 here", "key \\ud800 here"),
    ("x" * 900, "x" * 500),
])
def test_dead_letter_reasons_are_made_storable(text: str, stored: str) -> None:
    assert storable(text) == stored
    stored.encode("utf-8")  # a lone surrogate would raise here
