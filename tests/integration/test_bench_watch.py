"""`scout bench`'s drain watch samples over one connection and leaves its own backend out of PostgreSQL's CPU:
the stage measured is charged neither a backend start per sample nor the counting."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from cli.bench import streams
from cli.processes import Children
from tests.conftest import eventually
from tests.services import Postgres

ROWS = 40
# Every sample burns about as much CPU as a count over a large table would (its backend's cost, in the test)
COSTLY_COUNT = "SELECT count(*) FROM bench_watch WHERE (SELECT count(*) FROM generate_series(1, 200000)) > 0"


def _insert_between_samples(connect: Callable[..., Any], dsn: str, samples: list[str]) -> None:
    """A stage landing one row after each of the watch's samples, so rows arrive while the watch samples."""
    with connect(dsn, autocommit=True) as conn:
        for n in range(ROWS):
            sampled = len(samples)
            eventually(lambda: len(samples), until=lambda now: now > sampled,  # noqa: B023
                       timeout=60, what="the watch's next sample", interval=0.005)
            conn.execute("INSERT INTO bench_watch VALUES (%s)", [n])


class _CountingConnection:
    """The watch's connection, noting each execute of the sampling query."""

    def __init__(self, conn: Any, samples: list[str]) -> None:
        self._conn, self._samples = conn, samples

    def __enter__(self) -> _CountingConnection:
        self._conn.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.__exit__(*exc)

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        result = self._conn.execute(query, *args, **kwargs)
        if query in (COSTLY_COUNT, COSTLY_COUNT.encode()):
            self._samples.append("sample")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _one_sample_cpu(dsn: str) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        backend = psutil.Process(int(conn.execute("SELECT pg_backend_pid()").fetchone()[0]))  # type: ignore[index]
        before = backend.cpu_times()
        for _ in range(5):
            conn.execute(COSTLY_COUNT).fetchone()
        after = backend.cpu_times()
    return (after.user + after.system - before.user - before.system) / 5


def test_the_watch_opens_one_connection_and_leaves_its_samples_out_of_postgres_cpu(
        postgres: Postgres, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dsn = postgres.fresh_database(migrated=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_watch (n integer)")
    per_sample = _one_sample_cpu(dsn)
    connects: list[str] = []
    samples: list[str] = []
    real_connect = psycopg.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        connects.append(str(args[0]) if args else "")
        return _CountingConnection(real_connect(*args, **kwargs), samples)

    inserter = threading.Thread(target=_insert_between_samples, args=(real_connect, dsn, samples))
    monkeypatch.setattr(streams.psycopg, "connect", counting_connect)
    inserter.start()
    try:
        drain = streams.watch(dsn, COSTLY_COUNT, ROWS, Children({}, tmp_path), timeout=120)
    finally:
        inserter.join()
    assert connects == [dsn]  # one connection for every sample, not one per sample
    assert drain.rows > 0 and len(drain.rss_samples_mib) >= 5
    charged_by_samples = per_sample * len(drain.rss_samples_mib)
    # before: every sample's count (and a backend start each) was in PostgreSQL's CPU of the drain
    assert drain.postgres_cpu_s < charged_by_samples / 2, (drain.postgres_cpu_s, charged_by_samples)
