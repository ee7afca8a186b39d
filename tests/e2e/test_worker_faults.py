"""Stream workers under faults, on Apache Kafka: two workers sharing mixed traffic, SIGKILL mid-batch,
SIGTERM, and a batch the database refuses. Outcomes are read from the database."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import psycopg
from kafka import KafkaProducer

from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import worker_processes


def _envelope(body: dict, *, at: datetime | None = None) -> bytes:  # type: ignore[type-arg]
    return Envelope.wrap(Transaction.model_validate(body), source="simulator", received_at=at).to_bytes()


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM bronze.transactions), (SELECT count(*) FROM silver.transactions), "
            "(SELECT count(*) FROM silver.quarantine), (SELECT count(*) FROM ops.dead_letters)"
        ).fetchone()
    assert row is not None
    return dict(zip(("bronze", "silver", "quarantine", "dead"), map(int, row), strict=True))


def _silver_total(dsn: str) -> Decimal:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(total_amount), 0) FROM silver.transactions").fetchone()
    return Decimal(row[0]) if row else Decimal(0)


def _produce(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=20,
                             batch_size=1 << 20)
    for key, value in messages:
        producer.send(settings.topic, key=key, value=value)
    producer.flush()
    producer.close()


def test_two_workers_share_mixed_traffic_and_route_every_message(settings: Settings) -> None:
    gen = Generator(seed=11, stores=30)
    bodies = [gen.transaction(n) for n in range(20_000)]
    later = datetime.now(UTC) + timedelta(seconds=1)
    messages = [(b["store_id"].encode(), _envelope(b)) for b in bodies]
    resends = [(b["store_id"].encode(), _envelope(b, at=later)) for b in bodies[::20]]  # 5%, same hash
    conflicts = []
    for b in bodies[::100]:  # 1%: same store + id, other content
        changed = {**b, "items": [{**b["items"][0], "qty": b["items"][0]["qty"] + 1, "line_amount": None}]}
        changed["total_amount"] = str(Decimal(changed["items"][0]["unit_price"]) * changed["items"][0]["qty"])
        conflicts.append((b["store_id"].encode(), _envelope(changed, at=later)))
    poison = [(b"STORE-001", p) for p in (b"not json", b'{"schema": "pos.transactions.v0", "version": 0}')] * 100
    with worker_processes(settings, count=2):
        _produce(settings, messages)
        _produce(settings, resends + conflicts + poison)
        counts = eventually(lambda: _counts(settings.database_dsn()),
                            until=lambda c: c["silver"] + c["quarantine"] >= 20_200 and c["dead"] >= 200,
                            timeout=300, what="every message routed")
    assert counts == {"bronze": 20_200, "silver": 20_000, "quarantine": 200, "dead": 200}
    assert _silver_total(settings.database_dsn()) == sum(Decimal(b["total_amount"]) for b in bodies)
    with psycopg.connect(settings.database_dsn()) as conn:
        reasons = conn.execute("SELECT reasons, count(*) FROM silver.quarantine GROUP BY 1").fetchall()
        dead = conn.execute("SELECT split_part(reason, ':', 1), count(*) FROM ops.dead_letters GROUP BY 1 ORDER BY 1"
                            ).fetchall()
    assert reasons == [(["conflicting_duplicate"], 200)]
    assert dead == [("not JSON", 100), ("unsupported schema 'pos.transactions.v0' v0", 100)]


def test_sigkill_mid_batch_loses_and_doubles_nothing(settings: Settings) -> None:
    gen = Generator(seed=12)
    bodies = [gen.transaction(n) for n in range(15_000)]
    _produce_later = [(b["store_id"].encode(), _envelope(b)) for b in bodies]
    dsn = settings.database_dsn()
    with worker_processes(settings) as children:
        _produce(settings, _produce_later)
        eventually(lambda: _counts(dsn), until=lambda c: c["bronze"] >= 2_000, timeout=120, what="landing started")
        victim = children.running[0]
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(10)
        at_kill = _counts(dsn)
        children.start("worker-restarted", "worker")
        counts = eventually(lambda: _counts(dsn), until=lambda c: c["silver"] >= 15_000, timeout=300,
                            what="all 15,000 in silver after the restart")
    assert at_kill["bronze"] < 15_000 or at_kill["silver"] < 15_000  # the kill really was mid-stream
    assert counts == {"bronze": 15_000, "silver": 15_000, "quarantine": 0, "dead": 0}
    assert _silver_total(dsn) == sum(Decimal(b["total_amount"]) for b in bodies)


def test_sigterm_under_load_stops_a_worker_within_seconds_with_nothing_lost(settings: Settings) -> None:
    ensure_topics(settings)
    gen = Generator(seed=13)
    count = 20_000
    _produce(settings, [(b"S%d" % (n % 7), _envelope(gen.transaction(n))) for n in range(count)])
    dsn = settings.database_dsn()
    with worker_processes(settings) as children:
        eventually(lambda: _counts(dsn), until=lambda c: c["bronze"] >= 2_000, timeout=120, what="bronze landing")
        worker = children.running[0]
        started = time.monotonic()
        os.killpg(worker.proc.pid, signal.SIGTERM)  # in the middle of the backlog
        code = eventually(worker.proc.poll, until=lambda rc: rc is not None, timeout=30, what="the worker to exit")
        stopped_in = time.monotonic() - started
        at_stop = _counts(dsn)
        children.start("worker-again", "worker")
        counts = eventually(lambda: _counts(dsn), until=lambda c: c["silver"] == count, timeout=180,
                            what="every transaction in silver")
    print(f"worker stopped {stopped_in:.1f}s after SIGTERM with exit code {code}; bronze then {at_stop['bronze']}")
    assert code == 0 and stopped_in < 10
    assert at_stop["bronze"] < count  # it really was under load
    assert counts == {"bronze": count, "silver": count, "quarantine": 0, "dead": 0}


def test_a_row_the_database_refuses_is_dead_lettered_and_its_batch_lands(settings: Settings) -> None:
    dsn = settings.database_dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:  # a constraint only this test's database has
        conn.execute("ALTER TABLE bronze.transactions ADD CONSTRAINT no_poison CHECK (transaction_id <> 'TXN-POISON')")
    gen = Generator(seed=14)
    bodies = [gen.transaction(n) for n in range(300)]
    refused = {**bodies[0], "transaction_id": "TXN-POISON"}
    messages = [(b"S", _envelope(b)) for b in bodies[:150]] + [(b"S", _envelope(refused))]
    messages += [(b"S", _envelope(b)) for b in bodies[150:]]
    with worker_processes(settings):
        _produce(settings, messages)
        counts = eventually(lambda: _counts(dsn), until=lambda c: c["silver"] == 300 and c["dead"] == 1,
                            timeout=120, what="300 in silver and the refused row dead-lettered")
    assert counts == {"bronze": 300, "silver": 300, "quarantine": 0, "dead": 1}
    with psycopg.connect(dsn) as conn:
        reason, raw = conn.execute("SELECT reason, raw FROM ops.dead_letters").fetchone()  # type: ignore[misc]
    assert reason.startswith("refused by database: CheckViolation")
    assert orjson.loads(raw)["transaction_id"] == "TXN-POISON"
