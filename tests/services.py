"""Session-wide real services for integration and e2e tests: PostgreSQL 16 and Apache Kafka 3.9 (and, for a
test that needs one of its own, a three-broker Kafka cluster).

Set SCOUT_TEST_DATABASE_URL / SCOUT_TEST_KAFKA_BOOTSTRAP to use servers you run yourself.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cli.services.kafka import ApacheKafka, KafkaCluster
from cli.services.postgres import EmbeddedPostgres
from scout.migrate import migrate
from scout.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "scout_template"


@dataclass(frozen=True)
class Postgres:
    admin_dsn: str

    def dsn(self, database: str) -> str:
        base, _, _ = self.admin_dsn.rpartition("/")
        return f"{base}/{database}"

    def fresh_database(self, *, migrated: bool = True) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if migrated:
                stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(TEMPLATE))
            conn.execute(stmt)
        return self.dsn(name)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    external = os.environ.get("SCOUT_TEST_DATABASE_URL")
    server: EmbeddedPostgres | None = None
    if external:
        admin = external
    else:
        server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
        admin = server.start()
    pg = Postgres(admin)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    migrate(pg.dsn(TEMPLATE))
    try:
        yield pg
    finally:
        if server is not None:
            server.stop(mode="immediate")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("SCOUT_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = ApacheKafka(tmp_path_factory.mktemp("kafka"), cache_dir=ROOT / ".cache")
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture
def database(postgres: Postgres) -> str:
    """A migrated database of this test's own."""
    return postgres.fresh_database()


@pytest.fixture
def settings(database: str, kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings isolated per test: own database, own topics, own consumer group."""
    suffix = uuid.uuid4().hex[:8]
    return Settings(
        database_url=database,  # type: ignore[arg-type]
        kafka_bootstrap=kafka_bootstrap,
        topic=f"pos.transactions.v1.{suffix}",
        dead_letter_topic=f"pos.transactions.dlq.v1.{suffix}",
        stream_app_id=f"scout-test-{suffix}",
        data_dir=tmp_path / "scout",
        silver_idle_interval_s=0.1,
        bronze_batch_within_s=0.2,
        gold_refresh_interval_s=1.0,
    )


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[ApacheKafka]:
    """An Apache Kafka of this test's own, for tests that stop and restart it."""
    kafka = ApacheKafka(tmp_path / "kafka", cache_dir=ROOT / ".cache")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def kafka_cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    """Three Apache Kafka brokers of this test's own (one KRaft quorum on loopback), for tests that kill one."""
    cluster = KafkaCluster(tmp_path / "kafka-cluster", cache_dir=ROOT / ".cache")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
