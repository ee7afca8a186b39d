"""Consumer lag per partition, exported by the worker that owns the partition.

The high-water mark of every assigned partition is kept up to date by the worker's fetches; the start is the
offset its consumer group last committed there, or the offset landed in PostgreSQL (``ops.stream_offsets``)
when that is behind (Faust can commit past records that never landed: they count as lag until they land).
Lag is their difference, in messages; a partition this worker no longer owns drops out of its metrics (the
new owner exports it).

Example::

    register_lag(app, settings, landed)   # a Faust timer: every SCOUT_CONSUMER_LAG_INTERVAL_S
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import faust

from observability.metrics import CONSUMER_LAG, CONSUMER_POSITION, PARTITION_HIGHWATER
from scout.settings import Settings

if TYPE_CHECKING:
    from streams.bronze.landed import LandedOffsets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    highwater: int
    committed: int

    @property
    def lag(self) -> int:
        return max(self.highwater - self.committed, 0)


async def measure(consumer: Any, topics: Iterable[str], landed: Mapping[Any, int] | None = None
                  ) -> list[PartitionLag]:
    """Lag of the assigned partitions of ``topics``. A partition the group never committed counts from
    its earliest offset (the worker reads from the earliest offset); one not fetched yet is left out;
    a ``landed`` offset behind the committed one is the start instead."""
    wanted = set(topics)
    tps = sorted((tp for tp in consumer.assignment() if tp.topic in wanted), key=lambda tp: (tp.topic, tp.partition))
    committed: Mapping[Any, int | None] = consumer._committed_offset  # Faust keeps the next offset to read
    never = [tp for tp in tps if committed.get(tp) is None]
    earliest: Mapping[Any, int] = await consumer.earliest_offsets(*never) if never else {}
    result: list[PartitionLag] = []
    for tp in tps:
        highwater = consumer.highwater(tp)
        start = committed.get(tp)
        if start is None:
            start = earliest.get(tp)
        behind = (landed or {}).get(tp)
        if start is not None and behind is not None and behind < start:
            start = behind
        if highwater is None or start is None:
            continue
        result.append(PartitionLag(tp.topic, tp.partition, int(highwater), int(start)))
    return result


_exported: set[tuple[str, str]] = set()


def export(lags: list[PartitionLag]) -> None:
    """Set the gauges for these partitions and remove the ones no longer assigned here."""
    current: set[tuple[str, str]] = set()
    for item in lags:
        labels = (item.topic, str(item.partition))
        current.add(labels)
        CONSUMER_LAG.labels(*labels).set(item.lag)
        CONSUMER_POSITION.labels(*labels).set(item.committed)
        PARTITION_HIGHWATER.labels(*labels).set(item.highwater)
    for labels in _exported - current:
        for gauge in (CONSUMER_LAG, CONSUMER_POSITION, PARTITION_HIGHWATER):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
    _exported.clear()
    _exported.update(current)


def register_lag(app: faust.App, settings: Settings, landed: LandedOffsets | None = None) -> None:
    @app.timer(interval=settings.consumer_lag_interval_s)
    async def consumer_lag() -> None:
        try:
            consumer: Any = app.consumer
            done = await landed.next_offsets(consumer.assignment()) if landed is not None else None
            export(await measure(consumer, [settings.topic], done))
        except Exception as exc:  # metrics never take the worker down
            log.warning("consumer lag not measured: %r", exc)

    del consumer_lag
