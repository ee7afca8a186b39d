"""Lag per partition on the status page: the broker's end minus bronze's landed offset, unknown without a broker."""

from __future__ import annotations

from ingest_api.status import partition_lag


def _landed(partition: int, offset: int) -> dict[str, object]:
    return {"kafka_partition": partition, "landed_offset": offset, "epoch": 2, "owner": "w", "updated_at": None}


def test_lag_is_the_end_minus_the_landed_offset_and_never_negative() -> None:
    rows = partition_lag([_landed(0, 5), _landed(1, 9)], {0: 8, 1: 7})
    assert [(r["partition"], r["lag"]) for r in rows] == [(0, 3), (1, 0)]


def test_a_partition_bronze_never_claimed_counts_from_zero() -> None:
    rows = partition_lag([_landed(0, 5)], {0: 5, 1: 4})
    assert [(r["partition"], r["landed_offset"], r["lag"], r["epoch"]) for r in rows] == [(0, 5, 0, 2), (1, 0, 4, None)]


def test_without_the_broker_the_lag_is_unknown_and_the_landed_offsets_still_show() -> None:
    rows = partition_lag([_landed(0, 5)], None)
    assert [(r["partition"], r["landed_offset"], r["end_offset"], r["lag"]) for r in rows] == [(0, 5, None, None)]
