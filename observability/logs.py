"""Summarise repeated log lines: the first of a kind goes through, the rest are counted and reported.

A broker outage makes the Kafka client log every failed connect and metadata refresh (tens of thousands of
lines in 15 s under load); with this filter on the handlers an outage reads as one line of each kind, then
at most one line per kind every ``every_s`` seconds saying how many like it were held back.

Example::

    summarise_repeats(logging.getLogger().handlers)    # what every Scout process does at start
    # ERROR aiokafka: Unable connect to node with id 1: [Errno 111] Connection refused
    # ERROR aiokafka: 412 more in the last 10 s like: Unable connect to node with id %s: %s
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

# loggers (and their children) whose repeats are summarised: the Kafka clients, and the API's own publisher
NOISY = ("aiokafka", "kafka", "ingest_api.publisher")
EVERY_S = 10.0
_SUMMARY = "scout_summary"  # attribute on the summary records, which pass the filter


class SummariseRepeats(logging.Filter):
    """Per (logger, level, message template): let the first record through, hold the next ones for ``every_s``
    seconds, then log one line with how many were held. Records of other loggers pass untouched."""

    def __init__(self, prefixes: tuple[str, ...] = NOISY, every_s: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.prefixes, self.every_s, self.clock = prefixes, every_s, clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (window start, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False) or not any(
                record.name == p or record.name.startswith(p + ".") for p in self.prefixes):
            return True
        key, now = (record.name, record.levelno, str(record.msg)), self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or (now - window[0] >= self.every_s and not window[1]):
                if len(self._windows) > 1000:  # templates are few; a flood of distinct ones must not grow this
                    self._windows.clear()
                self._windows[key] = (now, 0)
                return True
            self._windows[key] = (window[0], window[1] + 1)
            if window[1] == 0:  # the first held back in this window: report the count when it closes
                timer = threading.Timer(max(0.0, window[0] + self.every_s - now), self._report, args=(key,))
                timer.daemon = True
                timer.start()
        return False

    def _report(self, key: tuple[str, int, str]) -> None:
        now = self.clock()
        with self._lock:
            started, held = self._windows.get(key, (now, 0))
            self._windows[key] = (now, 0)
        if held:
            name, level, template = key
            logging.getLogger(name).log(level, "%d more in the last %.0f s like: %s", held, now - started, template,
                                        extra={_SUMMARY: True})


def summarise_repeats(handlers: Iterable[logging.Handler], every_s: float = EVERY_S) -> None:
    """Put one shared SummariseRepeats on each handler (once)."""
    shared = SummariseRepeats(every_s=every_s)
    for handler in handlers:
        if not any(isinstance(f, SummariseRepeats) for f in handler.filters):
            handler.addFilter(shared)
