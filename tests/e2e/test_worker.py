"""`scout worker` on real Kafka: poison messages go to the dead letters without blocking the partition,
and a database outage is waited out with nothing lost or doubled."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import psycopg
import pytest
from kafka import KafkaProducer
from psycopg import sql

from cli.processes import Children
from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.workers import worker_processes
from tests.factories import envelope, tx_dict


def _counts(dsn: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM bronze.transactions), (SELECT count(*) FROM silver.transactions), "
            "(SELECT count(*) FROM ops.dead_letters)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


@pytest.fixture
def worker(settings: Settings) -> Iterator[Children]:
    with worker_processes(settings) as children:
        yield children


def _producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")


def test_poison_messages_are_dead_lettered_and_the_rest_lands(settings: Settings, worker: Children) -> None:
    producer = _producer(settings)
    tampered = orjson.loads(envelope(tx_dict(9999)).to_bytes())
    tampered["transaction"]["total_amount"] = "1.00"
    poison = [b"not json", b"[1, 2]", orjson.dumps({"schema": "other.v9", "version": 1}), orjson.dumps(tampered)]
    for n in range(100):
        producer.send(settings.topic, key=b"STORE-001", value=envelope(tx_dict(n)).to_bytes())
        if n % 25 == 0:
            producer.send(settings.topic, key=b"STORE-001", value=poison[n // 25])
    producer.flush()
    producer.close()
    dsn = settings.database_dsn()
    counts = eventually(lambda: _counts(dsn), until=lambda c: c == (100, 100, 4), timeout=120,
                        what="100 transactions in bronze and silver and 4 dead letters")
    assert counts == (100, 100, 4)
    with psycopg.connect(dsn) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM ops.dead_letters ORDER BY kafka_offset")]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "not a JSON object"
    assert reasons[2].startswith("unsupported schema")
    assert reasons[3].startswith("event_hash mismatch")


def test_a_database_outage_is_waited_out(settings: Settings, worker: Children, postgres) -> None:  # type: ignore[no-untyped-def]
    dsn = settings.database_dsn()
    name = dsn.rsplit("/", 1)[1]
    producer = _producer(settings)
    for n in range(50):
        producer.send(settings.topic, key=b"S", value=envelope(tx_dict(n)).to_bytes())
    producer.flush()
    eventually(lambda: _counts(dsn), until=lambda c: c[1] == 50, timeout=120, what="first 50 in silver")

    with psycopg.connect(postgres.admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        for n in range(50, 150):
            producer.send(settings.topic, key=b"S", value=envelope(tx_dict(n)).to_bytes())
        producer.flush()
        log = worker.running[0].log
        eventually(lambda: log.read_text(errors="replace").count("transient error"), until=lambda c: c >= 2,
                   timeout=60, what="the worker to hit and retry the outage")
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
    producer.close()
    counts = eventually(lambda: _counts(dsn), until=lambda c: c[:2] == (150, 150), timeout=120,
                        what="all 150 in bronze and silver after the outage")
    assert counts == (150, 150, 0)
    assert worker.dead() == []
