"""The bronze liveness alarm, a pure decision: a partition with records waiting on the broker whose landed
offset has not moved for ``timeout_s`` is stalled. Nothing is sought or restarted: the consumer owns its
positions, so a stall means PostgreSQL or the broker is away, or a bug; the metric, the alert and
`scout verify` tell a human.

Example::

    alarm = Liveness(timeout_s=30)
    alarm.observe(now, landed={0: 120}, ends={0: 500})   # set(): just seen
    alarm.observe(now + 31, landed={0: 120}, ends={0: 520})   # {0}: stalled
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Liveness:
    timeout_s: float
    since: dict[int, tuple[int, float]] = field(default_factory=dict)  # partition -> (landed offset, since)
    stalled: set[int] = field(default_factory=set)

    def landed(self, partition: int, offset: int) -> None:
        """A landing moved the partition: it is alive."""
        self.since.pop(partition, None)
        self.stalled.discard(partition)

    def forget(self, partition: int) -> None:
        self.since.pop(partition, None)
        self.stalled.discard(partition)

    def observe(self, now: float, landed: Mapping[int, int], ends: Mapping[int, int]) -> set[int]:
        """The partitions newly found stalled (``self.stalled`` holds all of them); a timeout of 0 turns it off."""
        if self.timeout_s <= 0:
            return set()
        waiting = {p: offset for p, offset in landed.items() if ends.get(p, offset) > offset}
        self.since = {p: seen for p, seen in self.since.items() if waiting.get(p) == seen[0]}
        for p, offset in waiting.items():
            self.since.setdefault(p, (offset, now))
        now_stalled = {p for p, (_, t) in self.since.items() if now - t >= self.timeout_s}
        new = now_stalled - self.stalled
        self.stalled = now_stalled
        return new
