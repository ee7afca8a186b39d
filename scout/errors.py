"""Scout's error tree and the one place that says whether an error is transient or terminal.

    ScoutError
     ├── TransientError      retry with backoff (database or broker unreachable, deadlock, timeout)
     └── TerminalError       route the record (quarantine / dead letter); retrying cannot help

``classify(exc)`` maps driver exceptions (psycopg, aiokafka, kafka-python, OS) onto the two kinds.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import psycopg
from psycopg import errors as pg_errors

Kind = Literal["transient", "terminal"]


class ScoutError(Exception):
    """Root of Scout's own exceptions."""


class TransientError(ScoutError):
    """Retrying later can succeed."""


class TerminalError(ScoutError):
    """Retrying cannot succeed; the record must be routed elsewhere."""


class PublishUnavailable(TransientError):
    """Kafka did not acknowledge in time; the caller must not promise delivery."""


_TRANSIENT_PG = (
    psycopg.OperationalError,  # connection refused / lost, admin shutdown, ...
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,
    pg_errors.TooManyConnections,
    pg_errors.CannotConnectNow,
    pg_errors.AdminShutdown,
    pg_errors.CrashShutdown,
)


def _kafka_transient(exc: BaseException) -> bool:
    module = type(exc).__module__
    if module.startswith(("aiokafka", "kafka")):
        retriable = getattr(exc, "retriable", None)
        return bool(retriable) or type(exc).__name__ in {
            "KafkaConnectionError",
            "KafkaTimeoutError",
            "NoBrokersAvailable",
            "NodeNotReadyError",
            "RequestTimedOutError",
        }
    return False


def classify(exc: BaseException) -> Kind:
    """Transient or terminal: the single decision point for every retry loop."""
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, TerminalError):
        return "terminal"
    if isinstance(exc, _TRANSIENT_PG):
        return "transient"
    if isinstance(exc, psycopg.Error):
        # data / integrity / programming errors: the same input fails the same way
        return "terminal"
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError, OSError)):
        return "transient"
    if _kafka_transient(exc):
        return "transient"
    return "terminal"


def backoff_delays(base: float = 0.2, cap: float = 10.0):
    """Exponential backoff delays without end: 0.2, 0.4, 0.8 ... capped at ``cap``."""
    delay = min(base, cap)
    while True:
        yield delay
        delay = min(cap, delay * 2)
