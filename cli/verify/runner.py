"""Run every check against one deployment: a check that needs a service that is down is skipped, not failed
twice, and an unexpected error becomes that check's failure with its message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from cli.verify import alerts, database, kafka, scheduler, stages
from cli.verify.model import Expected, Result, fail
from scout.db import q
from scout.settings import Settings

DB_CHECKS = ("roles and grants", "bronze partitions", "silver backlog", "gold views", "scheduler jobs", "alerts")
KAFKA_CHECKS = ("kafka topics", "kafka replication", "consumer group", "bronze progress")


def run_checks(settings: Settings, expected: Expected) -> list[Result]:
    results = _database_checks(settings, expected)
    by_name = {r.check: r for r in results}
    kafka_results = _kafka_checks(settings, expected, _landed_offsets(settings))
    # In the order an operator reads them: services, then the data flowing through them.
    order = ["database", "migrations", "roles and grants", "kafka", *KAFKA_CHECKS, *DB_CHECKS[1:]]
    by_name.update({r.check: r for r in kafka_results})
    return [by_name[name] for name in order if name in by_name]


def _guard(check: str, call: Callable[[], Result]) -> Result:
    try:
        return call()
    except Exception as exc:
        return fail(check, f"{type(exc).__name__}: {str(exc).strip()[:300]}")


def _skipped(checks: tuple[str, ...], why: str) -> list[Result]:
    return [Result(check, "skip", why) for check in checks]


def _database_checks(settings: Settings, expected: Expected) -> list[Result]:
    try:
        dsn = settings.database_dsn()
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name="scout-verify")
    except (RuntimeError, psycopg.Error) as exc:
        return [fail("database", f"cannot connect: {str(exc).strip()[:300]}; check SCOUT_DATABASE_URL and "
                                 "that PostgreSQL is up"),
                Result("migrations", "skip", "needs the database"), *_skipped(DB_CHECKS, "needs the database")]
    with conn:
        results = [_guard("database", lambda: database.database(conn)),
                   _guard("migrations", lambda: database.migrations(dsn))]
        if results[-1].status != "ok":
            return results + _skipped(DB_CHECKS, "needs current migrations")
        checks: list[tuple[str, Callable[[], Result]]] = [
            ("roles and grants", lambda: database.roles(conn)),
            ("bronze partitions", lambda: stages.bronze_partitions(conn)),
            ("silver backlog", lambda: stages.silver_backlog(conn, expected)),
            ("gold views", lambda: stages.gold(conn, expected, settings.gold_max_staleness_s)),
            ("scheduler jobs", lambda: scheduler.jobs(conn, expected)),
            ("alerts", lambda: alerts.alerts(conn)),
        ]
        results += [_guard(name, call) for name, call in checks]
    return results


@contextmanager
def _admin(settings: Settings) -> Iterator[Any]:
    client = kafka.connect(settings)
    try:
        yield client
    finally:
        client.close()


def _landed_offsets(settings: Settings) -> dict[int, tuple[int, float]] | None:
    """Where bronze stands on each partition of the topic and for how many seconds it has not moved (None when
    the database cannot tell)."""
    try:
        with psycopg.connect(settings.database_dsn(), connect_timeout=5, application_name="scout-verify") as conn:
            rows = conn.execute(q("verify_landed_offsets"), {"topic": settings.topic}).fetchall()
    except (RuntimeError, psycopg.Error):
        return None
    return {int(p): (int(o), float(idle)) for p, o, idle in rows}


def _kafka_checks(settings: Settings, expected: Expected,
                  landed: dict[int, tuple[int, float]] | None = None) -> list[Result]:
    try:
        with _admin(settings) as client:
            topics = [_guard("kafka topics", lambda: kafka.topics(client, settings)),
                      _guard("kafka replication", lambda: kafka.replication(client, settings))]
            try:
                return [*topics, *kafka.consumer_group(client, settings, expected, landed)]
            except Exception as exc:
                return [*topics, fail("consumer group", f"{type(exc).__name__}: {str(exc).strip()[:300]}")]
    except Exception as exc:  # the client could not even bootstrap
        return [fail("kafka", f"no broker answers at {settings.kafka_bootstrap} ({type(exc).__name__}): check "
                              "SCOUT_KAFKA_BOOTSTRAP and that Kafka is up"),
                *_skipped(KAFKA_CHECKS, "needs Kafka")]
