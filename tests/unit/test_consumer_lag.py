"""Consumer lag: the broker's end offset minus the offset landed in PostgreSQL, per partition held here."""

from __future__ import annotations

from prometheus_client import REGISTRY

from streams.lag import PartitionLag, export, measure


def test_lag_is_the_end_offset_minus_the_landed_offset() -> None:
    lags = measure({1: (40, 100), 0: (7, 7), 2: (5, None)}, "t")
    assert lags == [PartitionLag("t", 0, 7, 7), PartitionLag("t", 1, 100, 40)]  # partition 2: end not read yet
    assert [lag.lag for lag in lags] == [0, 60]
    assert PartitionLag("t", 3, 10, 12).lag == 0  # never negative


def test_export_sets_the_gauges_and_drops_partitions_no_longer_held() -> None:
    export(measure({0: (5, 9), 1: (3, 3)}, "lag-test"), stalled=1)
    labels = {"topic": "lag-test", "partition": "0"}
    assert REGISTRY.get_sample_value("scout_consumer_lag_messages", labels) == 4
    assert REGISTRY.get_sample_value("scout_bronze_landed_offset", labels) == 5
    assert REGISTRY.get_sample_value("scout_partition_highwater_offset", labels) == 9
    assert REGISTRY.get_sample_value("scout_bronze_stalled_partitions") == 1
    export(measure({1: (3, 3)}, "lag-test"))
    assert REGISTRY.get_sample_value("scout_consumer_lag_messages", labels) is None
    assert REGISTRY.get_sample_value("scout_consumer_lag_messages", {"topic": "lag-test", "partition": "1"}) == 0
    assert REGISTRY.get_sample_value("scout_bronze_stalled_partitions") == 0
