"""Workers joining, leaving and dying every few seconds while records keep arriving: every record lands in
bronze and silver exactly once, and a worker told to stop exits 0. Rebalances are where partitions change
hands (claims, epochs, fenced batches: docs/ARCHITECTURE.md); this scenario makes many of them under load and
reads the outcome from the database."""

from __future__ import annotations

import os
import signal
import threading
import time

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from cli.processes import Child
from cli.services import free_port
from scout.contract import Envelope, Transaction
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import worker_processes

pytestmark = pytest.mark.faults

RECORDS = 45_000
RATE = 3_000  # records per second, steady, while workers join, stop and die
CHURN_EVERY_S = 1.5  # the rebalances hit consumers with fetched batches in hand
MAX_CHANGES = 30
MIN_CHANGES = 12


def _counts(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM bronze.transactions), "
                           "(SELECT count(*) FROM silver.transactions)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _landed(dsn: str, topic: str) -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT kafka_partition, next_offset FROM ops.stream_offsets WHERE kafka_topic = %s",
                            (topic,)).fetchall()
    return {int(p): int(o) for p, o in rows}


def _end_offsets(settings: Settings) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    tps = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
    try:
        return {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _started(child: Child) -> bool:
    return "[^Worker]: Ready" in child.log.read_text(errors="replace")


def _feed(settings: Settings, messages: list[tuple[bytes, bytes]], done: threading.Event) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)
    started = time.monotonic()
    try:
        for n, (key, value) in enumerate(messages):
            producer.send(settings.topic, key=key, value=value)
            ahead = started + n / RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()
        done.set()


def test_workers_churning_under_load_lose_and_double_nothing(settings: Settings) -> None:
    gen = Generator(seed=108, stores=30)
    messages = [(body["store_id"].encode(),
                 Envelope.wrap(Transaction.model_validate(body), source="simulator").to_bytes())
                for body in (gen.transaction(n) for n in range(RECORDS))]
    dsn = settings.database_dsn()
    fed = threading.Event()
    with worker_processes(settings, count=2) as children:
        feeder = threading.Thread(target=_feed, args=(settings, messages, fed), daemon=True)
        feeder.start()
        churned = 0
        stopped: list[int] = []
        while churned < MAX_CHANGES and (churned < MIN_CHANGES or not fed.is_set() or _counts(dsn)[0] < RECORDS):
            fed.wait(CHURN_EVERY_S)
            alive = [c for c in children.running if c.proc.poll() is None]
            step = churned % 3
            if step == 0:  # one more worker joins
                children.env = {**children.env, "SCOUT_WORKER_WEB_PORT": str(free_port())}
                children.start(f"worker-join-{churned}", "worker")
            elif step == 1 and len(alive) > 1:
                # the oldest started worker is told to stop; one still importing has no handler yet and would die
                # by the signal, as any process does before it installs one, so on a loaded machine the step waits
                # for a worker to be started rather than skip the stop
                ready = eventually(lambda: [c for c in alive if c.proc.poll() is None and _started(c)],  # noqa: B023
                                   until=bool, timeout=180, what="a started worker to stop")
                os.killpg(ready[0].proc.pid, signal.SIGTERM)
                stopped.append(ready[0].proc.wait(40))
            elif step == 2 and len(alive) > 1:  # the newest dies
                os.killpg(alive[-1].proc.pid, signal.SIGKILL)
                alive[-1].proc.wait(30)
            churned += 1
        feeder.join(30)
        counts = eventually(lambda: _counts(dsn), until=lambda c: c == (RECORDS, RECORDS), timeout=300,
                            what=f"all {RECORDS} records in bronze and silver")
        end = _end_offsets(settings)
        landed = eventually(lambda: _landed(dsn, settings.topic), until=lambda o: o == end, timeout=60,
                            what="the landed offsets at the broker's end offsets")
        fenced = sum(c.log.read_text(errors="replace").count("bronze: fenced") for c in children.running)
    print(f"churn: {churned} changes; exit codes after SIGTERM: {stopped}; fenced batches: {fenced}")
    assert churned >= MIN_CHANGES
    assert counts == (RECORDS, RECORDS)
    assert landed == end
    assert stopped and set(stopped) == {0}
