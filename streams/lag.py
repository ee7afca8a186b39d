"""Consumer lag per partition, exported by the worker that holds the partition: the broker's end offset minus
the offset landed in PostgreSQL (what the bronze consumer holds). A partition this worker no longer holds
drops out of its metrics (the new holder exports it).

Example::

    export(measure(bronze.positions(), topic))   # every SCOUT_CONSUMER_LAG_INTERVAL_S
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from observability.metrics import BRONZE_STALLED, CONSUMER_LAG, LANDED_OFFSET, PARTITION_HIGHWATER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end: int
    landed: int

    @property
    def lag(self) -> int:
        return max(self.end - self.landed, 0)


def measure(positions: Mapping[int, tuple[int, int | None]], topic: str) -> list[PartitionLag]:
    """``positions``: partition -> (landed offset, broker end offset or None when not read yet)."""
    return [PartitionLag(topic, p, int(end), int(landed))
            for p, (landed, end) in sorted(positions.items()) if end is not None]


_exported: set[tuple[str, str]] = set()


def export(lags: list[PartitionLag], stalled: int = 0) -> None:
    """Set the gauges for these partitions and remove the ones no longer held here."""
    current: set[tuple[str, str]] = set()
    for item in lags:
        labels = (item.topic, str(item.partition))
        current.add(labels)
        CONSUMER_LAG.labels(*labels).set(item.lag)
        LANDED_OFFSET.labels(*labels).set(item.landed)
        PARTITION_HIGHWATER.labels(*labels).set(item.end)
    for labels in _exported - current:
        for gauge in (CONSUMER_LAG, LANDED_OFFSET, PARTITION_HIGHWATER):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
    _exported.clear()
    _exported.update(current)
    BRONZE_STALLED.set(stalled)
