"""Offsets the bronze agent never saw: a batch that starts past the next offset of its partition, or jumps
inside, means the consumer skipped records. Faust counts a skipped range as done (its gap handling, meant for
transaction markers) and would commit past it, so the records would never land; the agent seeks back instead.

The topic is written by an idempotent, non-transactional producer, so a partition's offsets have no holes: any
jump is a skip. Each skip is sought once (a partition truncated by retention would otherwise loop).

Example::

    guard = OffsetGuard()
    seeks = guard.after_batch(app.consumer_generation_id, positions, committed)   # {tp: offset to seek to}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from itertools import pairwise


class OffsetGuard:
    def __init__(self) -> None:
        self.generation: int | None = None
        self.expected: dict[Hashable, int] = {}
        self.sought: set[tuple[Hashable, int]] = set()

    def after_batch(self, generation: int, positions: Iterable[tuple[Hashable, int]],
                    committed: Mapping[Hashable, int | None]) -> dict[Hashable, int]:
        """Call once a batch is landed, with its (partition, offset) pairs and the consumer's committed offsets
        (next offset to read); returns the partitions to seek back and where to."""
        if generation != self.generation:  # a rebalance: the consumer restarted from the committed offsets
            self.generation = generation
            self.expected.clear()
            self.sought.clear()
        by_tp: dict[Hashable, list[int]] = defaultdict(list)
        for tp, offset in positions:
            by_tp[tp].append(offset)
        seeks: dict[Hashable, int] = {}
        for tp, offsets in by_tp.items():
            offsets.sort()
            start = self.expected.get(tp, committed.get(tp))
            missing = start if start is not None and offsets[0] > start else None
            if missing is None:
                missing = next((a + 1 for a, b in pairwise(offsets) if b > a + 1), None)
            if missing is not None and (tp, missing) not in self.sought:
                self.sought.add((tp, missing))
                seeks[tp] = missing
                self.expected[tp] = missing
            else:
                self.expected[tp] = max(offsets[-1] + 1, self.expected.get(tp, 0))
        return seeks
