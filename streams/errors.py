"""Errors of the streams stage; all are ScoutError, classified by ``scout.errors.classify``."""

from __future__ import annotations

from scout.errors import TerminalError, TransientError


class UndecodableMessage(TerminalError):
    """A topic message that is not a valid ``pos.transactions.v1`` envelope: goes to the dead letters."""

    def __init__(self, reason: str, *, topic: str, partition: int, offset: int) -> None:
        super().__init__(f"{reason} (topic={topic} partition={partition} offset={offset})")
        self.reason = reason


class SinkBackpressure(TransientError):
    """The database refused or failed a batch in a way that retrying may fix."""
