"""`scout bench`'s drain watch samples over one connection and leaves its own backend out of PostgreSQL's CPU:
the stage measured is charged neither a backend start per sample nor the counting."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from cli.bench import streams
from cli.processes import Children
from tests.services import Postgres

ROWS = 40
# Every sample burns about as much CPU as a count over a large table would (its backend's cost, in the test)
COSTLY_COUNT = "SELECT count(*) FROM bench_watch WHERE (SELECT count(*) FROM generate_series(1, 200000)) > 0"


def _insert_slowly(dsn: str, connected: threading.Event) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        connected.set()
        for n in range(ROWS):
            conn.execute("INSERT INTO bench_watch VALUES (%s)", [n])
            time.sleep(0.02)  # a stage landing rows over about a second, while the watch samples


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
    connected = threading.Event()
    inserter = threading.Thread(target=_insert_slowly, args=(dsn, connected))
    inserter.start()
    assert connected.wait(60)  # the inserter's connection is not the watch's

    connects: list[str] = []
    real_connect = psycopg.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        connects.append(str(args[0]) if args else "")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(streams.psycopg, "connect", counting_connect)
    try:
        drain = streams.watch(dsn, COSTLY_COUNT, ROWS, Children({}, tmp_path), timeout=120)
    finally:
        inserter.join()
    assert connects == [dsn]  # one connection for every sample, not one per sample
    assert drain.rows > 0 and len(drain.rss_samples_mib) >= 5
    charged_by_samples = per_sample * len(drain.rss_samples_mib)
    # before: every sample's count (and a backend start each) was in PostgreSQL's CPU of the drain
    assert drain.postgres_cpu_s < charged_by_samples / 2, (drain.postgres_cpu_s, charged_by_samples)
