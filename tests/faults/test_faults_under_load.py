"""Faults injected into the running pipeline under steady load through the API: processes SIGKILLed,
Kafka and PostgreSQL restarted, the API restarted with requests in flight, a duplicate flood and
poison messages. After each, the delivery guarantees are asserted from the database (see harness) and
the recovery figures are printed and written to recovery.json in the test's tmp dir.

`make test` runs the three scenarios not marked ``faults_extended`` (a worker crash, a broker restart,
an API crash: about 5 minutes) and the rebalance churn of test_rebalance_churn.py; `make test-faults` runs
them all. docs/RELIABILITY.md lists what each proves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from kafka import KafkaProducer
from pydantic import SecretStr

from cli.processes import Child
from cli.services.kafka import ApacheKafka
from cli.services.postgres import EmbeddedPostgres
from scout.contract import Envelope, Transaction
from scout.migrate import migrate
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import wait_api_ready
from tests.factories import tx_dict
from tests.faults.harness import Fault, Load, assert_delivered, finish, recovery, report, running_stack, steady

pytestmark = pytest.mark.faults
extended = pytest.mark.faults_extended


# --- which process holds an open silver batch -----------------------------------------------------


def _local_ports(pid: int) -> set[int]:
    """TCP ports of the sockets process ``pid`` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def _silver_batch_owner(dsn: str, workers: list[Child]) -> Child | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        ports = {int(p) for (p,) in conn.execute(
            "SELECT client_port FROM pg_stat_activity WHERE application_name = 'scout-streams' "
            "AND xact_start IS NOT NULL AND query ILIKE '%%silver.%%'").fetchall()}
    return next((w for w in workers if ports & _local_ports(w.proc.pid)), None)


def _slow_silver_batches(dsn: str) -> None:
    """This test's database only: every silver batch stays open 0.3 s, so a kill lands inside one."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION public.hold_batch() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER hold_batch AFTER INSERT ON silver.transactions "
                     "FOR EACH STATEMENT EXECUTE FUNCTION public.hold_batch()")


# --- (1) a silver worker SIGKILLed inside a batch -------------------------------------------------


def test_silver_worker_killed_mid_batch(settings: Settings, tmp_path: Path) -> None:
    dsn = settings.database_dsn()
    _slow_silver_batches(dsn)
    with running_stack(settings) as stack:
        load = Load(stack, seed=101).start()
        steady(load, after=0, count=100, what="steady load")
        owner = eventually(lambda: _silver_batch_owner(dsn, stack.workers()), until=lambda w: w is not None,
                           timeout=60, what="a worker inside a silver batch", interval=0.02)
        assert owner is not None
        fault = Fault.now()
        stack.kill(owner.name)
        steady(load, after=fault.at, count=100, what="transactions accepted after the kill")
        figures = finish(stack, load, fault, tmp_path, "silver worker SIGKILL mid-batch", killed=owner.name)
        survivors = stack.alive()
    assert owner.name not in survivors and len(survivors) == 3, survivors  # the other worker took over alone
    assert figures["refused_for_s"] == 0.0


# --- (2) a bronze consumer SIGKILLed ----------------------------------------------------------------


@extended
def test_bronze_consumer_killed(settings: Settings, tmp_path: Path) -> None:
    with running_stack(settings, workers=(("--no-silver",), ())) as stack:
        load = Load(stack, seed=102).start()
        steady(load, after=0, count=150, what="steady load")
        fault = Fault.now()
        stack.kill("worker-0")  # consumes bronze only; its partitions must move to worker-1
        steady(load, after=fault.at, count=150, what="transactions accepted after the kill")
        figures = finish(stack, load, fault, tmp_path, "bronze consumer SIGKILL")
        survivors = stack.alive()
    assert sorted(survivors) == ["api", "scheduler", "worker-1"]
    assert figures["refused_for_s"] == 0.0


# --- (3) the Kafka broker restarted -----------------------------------------------------------------


def test_kafka_broker_restarted(settings: Settings, own_broker: ApacheKafka, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"kafka_bootstrap": own_broker.bootstrap})
    with running_stack(settings) as stack:
        load = Load(stack, seed=103).start()
        steady(load, after=0, count=150, what="steady load")
        fault = Fault.now()
        own_broker.stop()
        eventually(lambda: load.failures_after(fault.at), until=lambda n: n >= 20, timeout=60,
                   what="clients to be refused while the broker is down")
        own_broker.start(keep_data=True)
        steady(load, after=time.monotonic(), count=100, timeout=180,
                what="transactions accepted after the broker came back")
        finish(stack, load, fault, tmp_path, "Kafka broker restart")
        survivors = stack.alive()
    assert len(survivors) == 4, survivors


# --- (4) PostgreSQL restarted -------------------------------------------------------------------------


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    server.create_database("scout")
    migrate(server.dsn("scout"))
    try:
        yield server
    finally:
        server.stop(mode="immediate")


@extended
def test_postgres_restarted(settings: Settings, own_postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"database_url": SecretStr(own_postgres.dsn("scout"))})
    with running_stack(settings) as stack:
        load = Load(stack, seed=104).start()
        steady(load, after=0, count=150, what="steady load")
        fault = Fault.now()
        own_postgres.stop(mode="fast")
        eventually(lambda: load.failures_after(fault.at), until=lambda n: n >= 20, timeout=60,
                   what="clients to be refused while the database is down")
        own_postgres.start()
        steady(load, after=time.monotonic(), count=100, timeout=180,
                what="transactions accepted after the database came back")
        finish(stack, load, fault, tmp_path, "PostgreSQL restart")
        survivors = stack.alive()
    assert len(survivors) == 4, survivors


# --- (5) the API restarted with requests in flight -------------------------------------------------


def test_api_killed_with_requests_in_flight(settings: Settings, tmp_path: Path) -> None:
    with running_stack(settings) as stack:
        # fast enough that requests overlap: with device tokens cached a POST takes a few ms
        load = Load(stack, seed=105, rate=300).start()
        steady(load, after=0, count=150, what="steady load")
        eventually(lambda: load.in_flight, until=lambda n: n >= 3, timeout=60, what="requests in flight",
                   interval=0.001)
        fault = Fault.now()
        stack.kill("api")
        stack.start("api", "api")  # what a supervisor does; the load keeps resending meanwhile
        wait_api_ready(stack.url)
        figures = finish(stack, load, fault, tmp_path, "API SIGKILL with requests in flight")
    cut_off = figures["attempts"]
    assert any(k not in {"202"} for k in cut_off), cut_off  # some requests really were cut off


# --- (6) a duplicate flood ------------------------------------------------------------------------------


@extended
def test_duplicate_flood(settings: Settings, tmp_path: Path) -> None:
    gen = Generator(seed=106)
    originals = [gen.transaction(n) for n in range(1000)]
    flood = [originals[i % 1000] for i in range(10_000)]  # each resent 10 times, interleaved
    with running_stack(settings) as stack:
        fault = Fault.now()
        load = Load(stack, bodies=flood, rate=1000, concurrency=32, idempotency_keys=False).start()
        sent = load.join()
        timings = assert_delivered(settings.database_dsn(), sent)
        figures = {**recovery(sent, settings.database_dsn(), fault_at=fault.at, fault_wall=fault.wall),
                   "drained_after_load_s": round(timings["drained_s"], 2)}
        report(tmp_path, "duplicate flood", figures)
    with psycopg.connect(settings.database_dsn()) as conn:
        counts = conn.execute("SELECT (SELECT count(*) FROM bronze.transactions), "
                              "(SELECT count(*) FROM silver.transactions), (SELECT count(*) FROM silver.quarantine)"
                              ).fetchone()
    assert figures["attempts"] == {"202": 10_000}
    assert counts == (1000, 1000, 0)


# --- (7) poison messages written straight to the topic ----------------------------------------------


POISON: list[tuple[bytes | None, bytes | None, str]] = [
    (b"STORE-001", b"not json", "not JSON"),
    (b"STORE-001", b"", "not JSON"),
    (b"STORE-001", None, "empty message (tombstone)"),
    (b"STORE-001", b"\xff\xfe\x00garbage\x00", "not JSON"),
    (None, b"[1, 2, 3]", "not a JSON object"),
    (b"STORE-001", b'{"schema": "pos.transactions.v0", "version": 0}', "unsupported schema"),
    (b"STORE-001", b'{"schema": "pos.transactions.v1", "version": 1}', "schema: "),
    (b"STORE-001", b'{"schema": "pos.transactions.v1", "version": 1, "event_hash": "' + b"0" * 64 + b'"', "not JSON"),
    (b"STORE-001", orjson.dumps({"schema": "pos.transactions.v1", "version": 1, "source": "api",
                                 "event_hash": "0" * 64, "received_at": "2026-01-05T10:00:00Z",
                                 "transaction": {"transaction_id": "X", "store_id": "S", "ts": "yesterday",
                                                 "total_amount": "NaN", "items": []}}), "schema: "),
    (b"STORE-001", orjson.dumps({**orjson.loads(Envelope.wrap(Transaction.model_validate(tx_dict(9)), source="api")
                                                .to_bytes()), "event_hash": "0" * 64}), "event_hash mismatch"),
    (b"STORE-001", b"{" * 100_000, "not JSON"),
    (b"STORE-001", b'"' + b"x" * 900_000 + b'"', "not a JSON object"),
]


@extended
def test_poison_messages_on_the_topic(settings: Settings, tmp_path: Path) -> None:
    with running_stack(settings) as stack:
        load = Load(stack, seed=107).start()
        steady(load, after=0, count=100, what="steady load")
        fault = Fault.now()
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                                 max_request_size=2_000_000)
        for _ in range(5):
            for key, value, _reason in POISON:
                producer.send(settings.topic, key=key, value=value)
        producer.flush()
        producer.close()
        steady(load, after=fault.at, count=150, what="transactions accepted after the poison")
        finish(stack, load, fault, tmp_path, "poison messages")
        dead = eventually(lambda: _dead_letters(settings.database_dsn()),
                          until=lambda d: sum(d.values()) >= 5 * len(POISON), timeout=60,
                          what="every poison message dead-lettered")
        survivors = stack.alive()
    assert sum(dead.values()) == 5 * len(POISON), dead
    for _key, _value, reason in POISON:
        assert any(r.startswith(reason) for r in dead), (reason, dead)
    assert len(survivors) == 4, survivors


def _dead_letters(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT reason, count(*) FROM ops.dead_letters GROUP BY 1").fetchall()
    return {str(r): int(n) for r, n in rows}
