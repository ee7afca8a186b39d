"""Errors of the bronze stage; all are ``ScoutError`` and classified by ``scout.errors.classify``.

    ScoutError
    ├── TerminalError
    │   ├── Fenced          a landing whose partition was claimed by another worker (rolled back)
    │   └── TopicRecreated  PostgreSQL landed past the broker's end of a partition: refuse to start
"""

from __future__ import annotations

from scout.errors import TerminalError


class Fenced(TerminalError):
    """The partitions changed hands (or moved) since this worker claimed them: the landing rolled back."""

    def __init__(self, *, topic: str, partitions: list[int], found: dict[int, tuple[int, int] | None]) -> None:
        super().__init__(f"fenced: partitions {partitions} of {topic} are no longer this worker's "
                         f"(next offset, epoch in PostgreSQL: {found})")
        self.partitions = partitions
        self.found = found


class TopicRecreated(TerminalError):
    """A partition's landed offset is past the broker's end: the topic was recreated, or a broker lost data."""

    def __init__(self, *, topic: str, partition: int, landed: int, end: int) -> None:
        super().__init__(
            f"{topic}[{partition}] ends at offset {end} on the broker but PostgreSQL landed up to {landed}: the topic "
            f"was recreated or the broker lost records. Nothing was read. If the topic was recreated on purpose, run "
            f"`scout bronze reset-offsets` and start the worker again")
        self.topic = topic
        self.partition = partition
