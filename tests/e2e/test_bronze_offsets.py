"""Bronze's offsets live in PostgreSQL, on real Apache Kafka with a real `scout worker`: the group's committed
offsets are read only for a partition PostgreSQL never saw; retention and a recreated topic are reported, not
skipped silently; an idle partition lands at once; a poison record never stops its partition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import orjson
import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from cli.processes import child_env
from cli.services import free_port
from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.test_worker_faults import _produce
from tests.e2e.workers import worker_processes


def _bronze(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM bronze.transactions").fetchone()
    return int(row[0]) if row else 0


def _landed(dsn: str, topic: str) -> dict[int, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT kafka_partition, next_offset FROM ops.stream_offsets WHERE kafka_topic = %s",
                            (topic,)).fetchall()
    return {int(p): int(o) for p, o in rows}


def _backlog(settings: Settings, count: int, seed: int) -> dict[int, int]:
    """``count`` transactions on the topic; the broker's end offsets."""
    ensure_topics(settings)
    gen = Generator(seed=seed, stores=30)
    bodies = [gen.transaction(n) for n in range(count)]
    _produce(settings, [(b["store_id"].encode(),
                         Envelope.wrap(Transaction.model_validate(b), source="simulator").to_bytes()) for b in bodies])
    return _ends(settings)


def _ends(settings: Settings) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    tps = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
    end = {tp.partition: int(o) for tp, o in consumer.end_offsets(tps).items()}
    consumer.close()
    return end


def _commit(settings: Settings, offsets: dict[int, int]) -> None:
    group = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=settings.stream_app_id,
                          enable_auto_commit=False)
    tps = {p: TopicPartition(settings.topic, p) for p in offsets}
    group.assign(list(tps.values()))
    group.commit({tps[p]: OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
    group.close()


def _set_landed(settings: Settings, offsets: dict[int, int]) -> None:
    with psycopg.connect(settings.database_dsn()) as conn:
        for p, o in offsets.items():
            conn.execute("INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset) "
                         "VALUES (%s, %s, %s)", (settings.topic, p, o))


def test_records_behind_the_groups_committed_offsets_land_when_postgresql_says_so(settings: Settings) -> None:
    end = _backlog(settings, 600, seed=31)
    assert len(end) == 3 and all(o > 20 for o in end.values()), end
    _set_landed(settings, {0: 0, 1: 0, 2: 0})
    _commit(settings, {0: end[0], 1: end[1] // 2})  # the group's offsets say "done": PostgreSQL says otherwise
    with worker_processes(settings):
        landed = eventually(lambda: _landed(settings.database_dsn(), settings.topic), until=lambda o: o == end,
                            timeout=120, what="the landed offsets at the broker's end offsets")
    assert _bronze(settings.database_dsn()) == 600 and landed == end


def test_a_partition_postgresql_never_saw_starts_at_the_groups_committed_offset(settings: Settings) -> None:
    end = _backlog(settings, 300, seed=33)
    _commit(settings, {0: 40})  # an existing group (before Scout tracked offsets in PostgreSQL)
    with worker_processes(settings):
        eventually(lambda: _landed(settings.database_dsn(), settings.topic), until=lambda o: o == end,
                   timeout=120, what="the landed offsets at the broker's end offsets")
    assert _bronze(settings.database_dsn()) == 300 - 40


def test_records_deleted_by_retention_before_they_landed_are_reported_and_the_rest_lands(settings: Settings) -> None:
    end = _backlog(settings, 300, seed=32)
    assert end[0] > 40, end
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    admin.delete_records({TopicPartition(settings.topic, 0): 30})  # what retention does to old records
    admin.close()
    _set_landed(settings, {0: 10})  # bronze had landed partition 0 up to offset 10
    with worker_processes(settings) as children:
        landed = eventually(lambda: _landed(settings.database_dsn(), settings.topic), until=lambda o: o == end,
                            timeout=120, what="the landed offsets at the broker's end offsets")
        log = children.running[0].log.read_text(errors="replace")
    assert _bronze(settings.database_dsn()) == 300 - 30 and landed == end
    assert f"records 10..29 of {settings.topic}[0] were deleted from the broker before they landed" in log


def test_a_recreated_topic_stops_the_worker_until_an_operator_resets_the_offsets(settings: Settings) -> None:
    end = _backlog(settings, 100, seed=34)
    _set_landed(settings, {0: end[0] + 50, 1: end[1], 2: end[2]})  # PostgreSQL landed past the broker's end
    with worker_processes(settings) as children:
        worker = children.running[0]
        code = eventually(worker.proc.poll, until=lambda rc: rc is not None, timeout=60, what="the worker to stop")
        log = worker.log.read_text(errors="replace")
    assert code == 1
    assert f"{settings.topic}[0] ends at offset {end[0]} on the broker but PostgreSQL landed up to {end[0] + 50}" in log
    assert "scout bronze reset-offsets" in log and _bronze(settings.database_dsn()) == 0
    env = child_env(database_url=settings.database_dsn(), kafka_bootstrap=settings.kafka_bootstrap,
                    topic=settings.topic)
    reset = subprocess.run([sys.executable, "-m", "cli.main", "bronze", "reset-offsets", "--yes"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    with worker_processes(settings):
        eventually(lambda: _landed(settings.database_dsn(), settings.topic), until=lambda o: o == end,
                   timeout=120, what="every partition landed again")
    assert _bronze(settings.database_dsn()) == 100


def test_a_record_on_an_idle_partition_lands_within_two_seconds(settings: Settings) -> None:
    _backlog(settings, 30, seed=35)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    gen = Generator(seed=36, stores=30)
    with worker_processes(settings):
        eventually(lambda: _bronze(settings.database_dsn()), until=lambda n: n == 30, timeout=120,
                   what="the backlog in bronze")
        delays = []
        for n in range(5):  # one record at a time, each to a partition idle since the backlog
            body = gen.transaction(100 + n)
            value = Envelope.wrap(Transaction.model_validate(body), source="simulator").to_bytes()
            producer.send(settings.topic, key=body["store_id"].encode(), value=value, partition=n % 3).get(10)
            acked = time.monotonic()
            eventually(lambda n=n: _bronze(settings.database_dsn()), until=lambda c, n=n: c == 31 + n, timeout=30,
                       what=f"record {n} in bronze")
            delays.append(time.monotonic() - acked)
    producer.close()
    print(f"acknowledged -> bronze on an idle partition: {[round(d, 2) for d in delays]} s")
    assert max(delays) < 2.0


def test_a_poison_record_whose_reason_holds_a_nul_is_dead_lettered_and_its_partition_goes_on(
        settings: Settings) -> None:
    ensure_topics(settings)
    gen = Generator(seed=37, stores=30)
    good = Envelope.wrap(Transaction.model_validate(gen.transaction(0)), source="simulator")
    document = orjson.loads(good.to_bytes())
    document["extra\x00key"] = "x"  # an extra envelope key: the reason names it, NUL included
    lone = b'{"schema": "pos.transactions.v1", "version": 1, "k\\ud800": 1}'
    behind = [gen.transaction(n) for n in range(1, 21)]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for value in (orjson.dumps(document), lone):
        producer.send(settings.topic, key=b"k", value=value, partition=0)
    for body in behind:
        producer.send(settings.topic, key=b"k", partition=0,
                      value=Envelope.wrap(Transaction.model_validate(body), source="simulator").to_bytes())
    producer.flush()
    producer.close()
    with worker_processes(settings) as children:
        eventually(lambda: _landed(settings.database_dsn(), settings.topic).get(0), until=lambda o: o == 22,
                   timeout=30, what="partition 0 landed past the poison")
        os.killpg(children.running[0].proc.pid, signal.SIGTERM)
    with psycopg.connect(settings.database_dsn()) as conn:
        dead = conn.execute("SELECT kafka_offset, reason FROM ops.dead_letters ORDER BY kafka_offset").fetchall()
    assert _bronze(settings.database_dsn()) == 20
    assert [o for o, _ in dead] == [0, 1]
    assert "extra\\x00key" in dead[0][1] and dead[1][1].startswith("not JSON")


def _stalled(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1.0
    return sum(s.value for family in text_string_to_metric_families(text)
               if family.name == "scout_bronze_stalled_partitions" for s in family.samples)


def test_a_landing_stuck_in_postgresql_raises_the_stall_alarm_and_lands_once_released(settings: Settings) -> None:
    """The worker's loop waits on the landing in flight; the alarm runs beside it and sees the records waiting."""
    dsn, port = settings.database_dsn(), free_port()
    with worker_processes(settings, consumer_stall_timeout_s="2", consumer_lag_interval_s="1",
                          worker_metrics_port=str(port)):
        first = _backlog(settings, 30, seed=41)
        eventually(lambda: _landed(dsn, settings.topic), until=lambda o: o == first, timeout=60,
                   what="the first records landed")
        with psycopg.connect(dsn) as lock:  # holds every partition's offset row: the next landing waits on it
            lock.execute("SELECT 1 FROM ops.stream_offsets WHERE kafka_topic = %s FOR UPDATE", (settings.topic,))
            end = _backlog(settings, 30, seed=42)
            eventually(lambda: _stalled(port), until=lambda n: n >= 1, timeout=60,
                       what="scout_bronze_stalled_partitions to rise while the landing waits for PostgreSQL")
            assert _landed(dsn, settings.topic) == first
        eventually(lambda: _landed(dsn, settings.topic), until=lambda o: o == end, timeout=60,
                   what="the waiting records landed once PostgreSQL let go")
        eventually(lambda: _stalled(port), until=lambda n: n == 0, timeout=60, what="the stall gauge back to 0")
