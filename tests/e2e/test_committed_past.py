"""A consumer group whose committed offsets are past records that never landed (what Faust leaves behind when
it drops records around a rebalance and counts them as done): a worker lands them anyway, because it checks
the offsets landed in PostgreSQL, not the group's. Real Apache Kafka, a real `scout worker`, outcomes from the
database."""

from __future__ import annotations

import psycopg
from kafka import KafkaConsumer, TopicPartition
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
