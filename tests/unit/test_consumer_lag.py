"""Consumer lag per partition from what the worker's consumer knows: high-water marks and committed offsets."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, NamedTuple

from prometheus_client import REGISTRY

from streams.lag import PartitionLag, export, measure


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    """The part of Faust's consumer the lag reads: assignment, high-water marks, committed offsets."""

    def __init__(self, highwaters: dict[TP, int | None], committed: dict[TP, int | None],
                 earliest: dict[TP, int]) -> None:
        self._highwaters = highwaters
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None, committed)
        self._earliest = earliest
        self.asked_earliest: list[TP] = []

    def assignment(self) -> set[TP]:
        return set(self._highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self._highwaters[tp]

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.asked_earliest.extend(tps)
        return {tp: self._earliest[tp] for tp in tps}


def _lag(topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value("scout_consumer_lag_messages", {"topic": topic, "partition": str(partition)})


def test_lag_is_highwater_minus_committed_for_the_assigned_partitions_of_the_topic() -> None:
    consumer = FakeConsumer(
        highwaters={TP("t", 0): 100, TP("t", 1): 50, TP("t", 2): 7, TP("t", 3): None, TP("other", 0): 9},
        committed={TP("t", 0): 90, TP("t", 1): 50, TP("t", 3): 4},
        earliest={TP("t", 2): 2},
    )
    lags = asyncio.run(measure(consumer, ["t"]))
    # partition 2 never committed: counted from its earliest offset; partition 3 not fetched yet: left out
    assert lags == [PartitionLag("t", 0, 100, 90), PartitionLag("t", 1, 50, 50), PartitionLag("t", 2, 7, 2)]
    assert [lag.lag for lag in lags] == [10, 0, 5]
    assert consumer.asked_earliest == [TP("t", 2)]


def test_records_the_group_committed_past_but_never_landed_count_as_lag() -> None:
    consumer = FakeConsumer(highwaters={TP("t", 0): 100, TP("t", 1): 50}, committed={TP("t", 0): 100, TP("t", 1): 40},
                            earliest={})
    lags = asyncio.run(measure(consumer, ["t"], {TP("t", 0): 80, TP("t", 1): 45}))
    assert [lag.lag for lag in lags] == [20, 10]  # landed behind committed counts; landed ahead does not


def test_export_sets_the_gauges_and_drops_partitions_no_longer_assigned() -> None:
    export([PartitionLag("lag-test", 0, 100, 90), PartitionLag("lag-test", 1, 20, 5)])
    assert (_lag("lag-test", 0), _lag("lag-test", 1)) == (10, 15)
    labels = {"topic": "lag-test", "partition": "1"}
    assert REGISTRY.get_sample_value("scout_consumer_committed_offset", labels) == 5
    assert REGISTRY.get_sample_value("scout_partition_highwater_offset", labels) == 20
    export([PartitionLag("lag-test", 0, 120, 120)])  # partition 1 went to another worker
    assert (_lag("lag-test", 0), _lag("lag-test", 1)) == (0, None)
    assert REGISTRY.get_sample_value("scout_partition_highwater_offset", labels) is None


def test_a_committed_offset_past_the_highwater_mark_is_no_lag() -> None:
    item: Any = PartitionLag("t", 0, highwater=10, committed=12)  # a stale high-water mark after a commit
    assert item.lag == 0
