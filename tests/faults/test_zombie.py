"""A zombie worker: stopped with SIGSTOP in the middle of a landing and past its session timeout, its
partitions taken over by another worker, then SIGCONT. It lands nothing for them (its batch is fenced by the
new epoch, counted in `scout_bronze_fenced_batches_total`); nothing is lost or doubled.

To stop it mid-landing every time, the test holds a lock on bronze.transactions until the zombie's COPY waits
for it, freezes the zombie, then lets the lock go."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import psycopg
import pytest

from cli.services import free_port
from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.test_worker_faults import _produce
from tests.e2e.workers import worker_processes
from tests.faults.test_rebalance_churn import _counts, _end_offsets, _landed

pytestmark = pytest.mark.faults

RECORDS = 20_000


def _owners(dsn: str, topic: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT DISTINCT owner FROM ops.stream_offsets WHERE kafka_topic = %s", (topic,))
        return {str(r[0]) for r in rows}


def _waiting_on_bronze(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted "
                           "AND relation = 'bronze.transactions'::regclass").fetchone()
    return bool(row and row[0])


def _owner_of(log: Path) -> str:
    """The owner name a worker writes into ops.stream_offsets (host:pid), from its log."""
    found = eventually(lambda: re.search(r"member_id scout-bronze-(\S+:\d+)-", log.read_text(errors="replace")),
                       until=bool, timeout=60, what="the worker joining the group")
    assert found is not None
    return found.group(1)


def _fenced(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("scout_bronze_fenced_batches_total"))


def test_a_zombie_worker_is_fenced_and_nothing_is_lost_or_doubled(settings: Settings) -> None:
    ensure_topics(settings)
    gen = Generator(seed=211, stores=30)
    _produce(settings, [(b["store_id"].encode(), Envelope.wrap(Transaction.model_validate(b), source="simulator")
                         .to_bytes()) for b in (gen.transaction(n) for n in range(RECORDS))])
    dsn = settings.database_dsn()
    zombie_port, other_port = free_port(), free_port()
    with worker_processes(settings, worker_metrics_port=str(zombie_port), silver_batch_size="200") as children:
        zombie = children.running[0]
        eventually(lambda: _counts(dsn)[0], until=lambda n: n >= 1_000, timeout=120, what="the zombie landing")
        with psycopg.connect(dsn) as lock:
            lock.execute("LOCK TABLE bronze.transactions IN EXCLUSIVE MODE")  # reads go on, landings wait
            eventually(lambda: _waiting_on_bronze(dsn), until=bool, timeout=30, what="the zombie's landing waiting")
            os.killpg(zombie.proc.pid, signal.SIGSTOP)
            frozen_at = _counts(dsn)[0]
            children.env = {**children.env, "SCOUT_WORKER_METRICS_PORT": str(other_port)}
            other = children.start("worker-other", "worker")
            eventually(lambda: _owners(dsn, settings.topic), until=lambda o: o == {_owner_of(other.log)},
                       timeout=60, what="every partition claimed by the other worker")
        eventually(lambda: _counts(dsn)[0], until=lambda n: n > frozen_at, timeout=60, what="the other worker landing")
        os.killpg(zombie.proc.pid, signal.SIGCONT)
        counts = eventually(lambda: _counts(dsn), until=lambda c: c == (RECORDS, RECORDS), timeout=300,
                            what=f"all {RECORDS} records in bronze and silver")
        end = _end_offsets(settings)
        landed = eventually(lambda: _landed(dsn, settings.topic), until=lambda o: o == end, timeout=60,
                            what="the landed offsets at the broker's end offsets")
        fenced = _fenced(zombie_port)
        zombie_log = zombie.log.read_text(errors="replace")
    print(f"zombie: frozen at {frozen_at} rows; fenced batches after SIGCONT: {fenced}")
    assert counts == (RECORDS, RECORDS)
    assert landed == end
    assert fenced >= 1 and "bronze: fenced on partitions" in zombie_log
