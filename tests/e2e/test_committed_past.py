"""A consumer group whose committed offsets are past records that never landed (what Faust leaves behind when
it drops records around a rebalance and counts them as done): a worker lands them anyway, because it checks
the offsets landed in PostgreSQL, not the group's. Records deleted by retention before they landed are
reported, and the rest lands. Real Apache Kafka, a real `scout worker`, outcomes from the database."""

from __future__ import annotations

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

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


def test_records_behind_the_groups_committed_offsets_are_landed(settings: Settings) -> None:
    ensure_topics(settings)
    gen = Generator(seed=31, stores=30)
    bodies = [gen.transaction(n) for n in range(600)]
    _produce(settings, [(b["store_id"].encode(),
                         Envelope.wrap(Transaction.model_validate(b), source="simulator").to_bytes()) for b in bodies])
    group = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=settings.stream_app_id,
                          enable_auto_commit=False)
    tps = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
    group.assign(tps)
    end = {tp.partition: int(o) for tp, o in group.end_offsets(tps).items()}
    assert len(end) == 3 and all(o > 20 for o in end.values()), end
    # partition 0: committed at its end (nothing more will arrive: only the watchdog can notice);
    # partition 1: committed half-way (the first batch starts past the landed offset); partition 2: untouched
    group.commit({tps[0]: OffsetAndMetadata(end[0], "", -1), tps[1]: OffsetAndMetadata(end[1] // 2, "", -1)})
    group.close()
    with worker_processes(settings, consumer_stall_timeout_s="3") as children:
        eventually(lambda: _bronze(settings.database_dsn()), until=lambda n: n >= 600, timeout=120,
                   what="every record in bronze")
        landed = eventually(lambda: _landed(settings.database_dsn(), settings.topic), until=lambda o: o == end,
                            timeout=30, what="the landed offsets at the broker's end offsets")
        log = children.running[0].log.read_text(errors="replace")
    assert _bronze(settings.database_dsn()) == 600
    assert landed == end
    assert "never reached the agent" in log  # partition 1: the agent sought back
    assert "seeking back to the landed offsets" in log  # partition 0: the watchdog did


def test_records_deleted_by_retention_before_they_landed_are_reported_and_the_rest_lands(settings: Settings) -> None:
    ensure_topics(settings)
    gen = Generator(seed=32, stores=30)
    bodies = [gen.transaction(n) for n in range(300)]
    _produce(settings, [(b["store_id"].encode(),
                         Envelope.wrap(Transaction.model_validate(b), source="simulator").to_bytes()) for b in bodies])
    tp = TopicPartition(settings.topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    end = {t.partition: int(o) for t, o in consumer.end_offsets(
        [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]).items()}
    consumer.close()
    assert end[0] > 40, end
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    admin.delete_records({tp: 30})  # what retention does to records older than retention.ms
    admin.close()
    with psycopg.connect(settings.database_dsn()) as conn:  # bronze had landed partition 0 up to offset 10
        conn.execute("INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset) VALUES (%s, 0, 10)",
                     (settings.topic,))
    with worker_processes(settings) as children:
        eventually(lambda: _bronze(settings.database_dsn()), until=lambda n: n >= 300 - 30, timeout=120,
                   what="every record still on the broker in bronze")
        landed = eventually(lambda: _landed(settings.database_dsn(), settings.topic), until=lambda o: o == end,
                            timeout=30, what="the landed offsets at the broker's end offsets")
        log = children.running[0].log.read_text(errors="replace")
    assert _bronze(settings.database_dsn()) == 300 - 30
    assert landed == end
    assert f"records 10..29 of {settings.topic}[0] were deleted from the broker before they landed" in log
