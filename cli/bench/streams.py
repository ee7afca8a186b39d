"""Benchmarks of the stream stages: bronze landing of a Kafka backlog, silver drain of a bronze backlog."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import psycopg

from cli.bench import raw
from cli.bench.reference import reference_bronze_rate
from cli.processes import Children, child_env
from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator

BRONZE_COLUMNS = ("event_hash", "source", "store_id", "transaction_id", "payload", "received_at", "kafka_topic",
                  "kafka_partition", "kafka_offset")
TXN_COLUMNS = ("store_id", "transaction_id", "ts", "total_amount", "currency", "device_id", "customer_segment",
               "payment_method", "item_count", "source", "event_hash", "bronze_id", "received_at")
LINE_COLUMNS = ("txn_id", "line_no", "product_key", "product_id", "product_name", "qty", "unit_price",
                "line_amount", "link_method", "link_confidence")


@dataclass
class Backlog:
    envelopes: list[Envelope]
    messages: list[tuple[bytes, bytes]]

    @classmethod
    def generate(cls, count: int, seed: int = 42) -> Backlog:
        gen = Generator(seed=seed, stores=50)
        envelopes = [Envelope.wrap(Transaction.model_validate(gen.transaction(n)), source="simulator")
                     for n in range(count)]
        return cls(envelopes, [(e.transaction.store_id.encode(), e.to_bytes()) for e in envelopes])

    def bronze_rows(self, topic: str) -> list[tuple[Any, ...]]:
        import orjson

        return [(e.event_hash, e.source, e.transaction.store_id, e.transaction.transaction_id,
                 orjson.dumps(e.transaction.canonical()).decode(), e.received_at, topic, 0, n)
                for n, e in enumerate(self.envelopes)]

    def silver_rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        txns, lines = [], []
        for n, e in enumerate(self.envelopes, start=1):
            t = e.transaction
            txns.append((t.store_id, t.transaction_id, t.ts, t.total_amount, t.currency, t.device_id,
                         t.customer_segment, t.payment_method, len(t.items), e.source, e.event_hash, n,
                         e.received_at))
            for line_no, item in enumerate(t.items, start=1):
                amount = item.line_amount or (item.unit_price * item.qty).quantize(Decimal("0.01"))
                lines.append((n, line_no, None, item.product_id, item.product_name, item.qty, item.unit_price,
                              amount, "sku", Decimal("1.000")))
        return txns, lines


SAMPLE_EVERY_S = 0.05  # how often the bench reads the row count and the workers' RSS


@dataclass
class Drain:
    rate: float
    seconds: float
    rss_samples_mib: list[float]  # the workers' summed RSS, every SAMPLE_EVERY_S over the drain
    rows: int = 0
    worker_cpu_s: float = 0.0  # CPU time (user + system) the workers used over the drain
    postgres_cpu_s: float = 0.0  # CPU time of the PostgreSQL server's processes over the drain

    @property
    def rss(self) -> dict[str, float]:
        """Start, peak and end of the workers' RSS over the drain: flat means end ≈ start."""
        samples = self.rss_samples_mib or [0.0]
        return {"start_mib": samples[0], "peak_mib": max(samples), "end_mib": samples[-1]}

    def report(self) -> dict[str, Any]:
        every = max(1, len(self.rss_samples_mib) // 50)
        return {"rss": self.rss, "rss_mib_over_time": self.rss_samples_mib[::every], "cpu": cpu_per_row(
            self.rows, self.worker_cpu_s, self.postgres_cpu_s)}


def cpu_per_row(rows: int, client_s: float, postgres_s: float) -> dict[str, float]:
    """CPU microseconds per row, client and server: unlike rates, these hardly move with the machine's load."""
    n = max(rows, 1)
    return {"client_us_per_row": client_s / n * 1e6, "postgres_us_per_row": postgres_s / n * 1e6,
            "total_us_per_row": (client_s + postgres_s) / n * 1e6}


def _cpu(proc: psutil.Process, *, reaped: bool = False) -> float:
    try:
        times = proc.cpu_times()
        return float(times.user + times.system + (times.children_user + times.children_system if reaped else 0))
    except psutil.Error:
        return 0.0


def copy_with_cpu(dsn: str, like: str, columns: Sequence[str],
                  rows: Sequence[tuple[Any, ...]]) -> tuple[float, dict[str, float]]:
    """``raw.copy_rows`` (rows/s) and what it cost in CPU per row, on this side and in PostgreSQL."""
    client, server = time.process_time(), postgres_cpu(dsn)
    rate = raw.copy_rows(dsn, like, columns, rows)
    return rate, cpu_per_row(len(rows), time.process_time() - client, postgres_cpu(dsn) - server)


def postgres_cpu(dsn: str) -> float:
    """CPU seconds used so far by the PostgreSQL server behind ``dsn`` (postmaster and its live backends)."""
    with psycopg.connect(dsn) as conn:
        return _server_cpu(_backend(conn))


def _backend(conn: psycopg.Connection[Any]) -> psutil.Process:
    row = conn.execute(b"SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return psutil.Process(int(row[0]))


def _server_cpu(backend: psutil.Process, *, but_it: bool = False) -> float:
    """CPU seconds of the server ``backend`` belongs to, while it is alive; ``but_it``: without its own."""
    postmaster = backend.parent()
    if postmaster is None:
        return 0.0
    backends = postmaster.children(recursive=True)
    # backends that have exited are in the postmaster's children times, live ones in their own
    total = _cpu(postmaster, reaped=True) + sum(_cpu(p) for p in backends)
    return total - _cpu(backend) if but_it else total


def watch(dsn: str, query: str, target: int, children: Children, timeout: float) -> Drain:
    """Rate between the first and the last row seen, sampling the workers' RSS on the way. Every sample is read
    over one connection and that connection's backend is left out of PostgreSQL's CPU: the drain is charged
    neither a backend start per sample nor the counting."""
    first: tuple[float, int] | None = None
    cpu_start = (0.0, 0.0)
    samples: list[float] = []
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        sampler = _backend(conn)

        def count() -> int:
            row = conn.execute(query.encode()).fetchone()
            return int(row[0]) if row else 0

        while True:
            now, seen = time.perf_counter(), count()
            if first is None and seen > 0:
                first = (now, seen)
                cpu_start = (sum(_cpu(psutil.Process(c.proc.pid)) for c in children.running),
                             _server_cpu(sampler, but_it=True))
            if first is not None:  # from the first row on: the drain, not the worker's start-up
                samples.append(sum(_rss(c.proc.pid) for c in children.running))
            if seen >= target:
                break
            if time.monotonic() > deadline or children.dead():
                dead = [c.name for c in children.dead()]
                raise RuntimeError(f"stopped at {seen:,} of {target:,} (dead workers: {dead})")
            time.sleep(SAMPLE_EVERY_S)
        assert first is not None
        seconds = max(now - first[0], 1e-6)
        worker_cpu = sum(_cpu(psutil.Process(c.proc.pid)) for c in children.running) - cpu_start[0]
        postgres = _server_cpu(sampler, but_it=True) - cpu_start[1]
    return Drain((seen - first[1]) / seconds, seconds, samples, seen - first[1], worker_cpu, postgres)


def _rss(pid: int) -> float:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return 0.0


def start_workers(settings: Settings, dsn: str, bootstrap: str, count: int, log_dir: Path, *,
                  silver: bool) -> Children:
    env = child_env(database_url=dsn, kafka_bootstrap=bootstrap, topic=settings.topic,
                    dead_letter_topic=settings.dead_letter_topic, stream_app_id=settings.stream_app_id,
                    data_dir=str(log_dir.parent), worker_metrics_port="0", log_level="warning",
                    kafka_idempotence="true")
    children = Children(env, log_dir)
    for n in range(count):
        children.start(f"worker-{n}", "worker", *([] if silver else ["--no-silver"]))
    return children


def bench_bronze_and_silver(bootstrap: str, dsn: str, reference_dsn: str, work: Path, *, count: int,
                            silver_workers: int, say: Callable[[str], None], bronze: bool = True,
                            silver: bool = True) -> dict[str, Any]:
    """Bronze: Kafka backlog → bronze worker. Silver: bronze backlog (landed by bronze, or COPYed in when
    bronze is not measured) → silver workers. Each next to the raw limits measured in the same run."""
    settings = Settings(kafka_bootstrap=bootstrap, topic="bench.transactions", dead_letter_topic="bench.dlq",
                        stream_app_id="scout-bench", topic_partitions=3)
    ensure_topics(settings)
    say(f"generating {count:,} transactions ...")
    backlog = Backlog.generate(count)
    report: dict[str, Any] = {"transactions": count, "raw": {}}
    if bronze:
        report["bronze"] = _bench_bronze(settings, backlog, bootstrap, dsn, reference_dsn, work, say, report["raw"])
    else:
        say("loading the bronze backlog with COPY (bronze itself not measured) ...")
        raw.copy_rows(dsn, "bronze.transactions", BRONZE_COLUMNS, backlog.bronze_rows(settings.topic),
                      into_like=False)
    if silver:
        report["silver"] = _bench_silver(settings, backlog, bootstrap, dsn, work, silver_workers, say, report)
    return report


def _bench_bronze(settings: Settings, backlog: Backlog, bootstrap: str, dsn: str, reference_dsn: str, work: Path,
                  say: Callable[[str], None], limits: dict[str, Any]) -> dict[str, Any]:
    count = len(backlog.messages)
    say("raw: Kafka produce of the backlog ...")
    limits["kafka_produce_msg_s"] = raw.kafka_produce(bootstrap, settings.topic, backlog.messages)
    say("raw: Kafka consume (aiokafka getmany) ...")
    limits["kafka_consume_msg_s"] = consume = raw.kafka_consume(bootstrap, settings.topic, count)
    say("raw: COPY of the same bronze rows ...")
    copy_bronze, limits["copy_bronze_cpu"] = copy_with_cpu(dsn, "bronze.transactions", BRONZE_COLUMNS,
                                                          backlog.bronze_rows(settings.topic))
    limits["copy_bronze_rows_s"] = copy_bronze
    say("scout: bronze worker landing the backlog ...")
    children = start_workers(settings, dsn, bootstrap, 1, work / "logs-bronze", silver=False)
    try:
        # the landed offsets: a cheap read (a count(*) of a growing table 20 times a second would load PostgreSQL)
        drain = watch(dsn, f"SELECT coalesce(sum(next_offset), 0) FROM ops.stream_offsets "
                           f"WHERE kafka_topic = '{settings.topic}'", count, children, timeout=1800)
    finally:
        children.stop_all()
    say("reference: the same landing code in a plain aiokafka loop (into a scratch database) ...")
    reference = reference_bronze_rate(bootstrap, settings.topic, reference_dsn, count)
    return {"tx_s": drain.rate, "seconds": drain.seconds, "ratio_to_copy": drain.rate / copy_bronze,
            "reference_aiokafka_loop_tx_s": reference, "ratio_to_reference": drain.rate / reference,
            "ratio_to_consume": drain.rate / consume, **drain.report()}


def _bench_silver(settings: Settings, backlog: Backlog, bootstrap: str, dsn: str, work: Path, workers: int,
                  say: Callable[[str], None], report: dict[str, Any]) -> dict[str, Any]:
    count = len(backlog.messages)
    txns, lines = backlog.silver_rows()
    limits = report["raw"]
    say("raw: COPY of the same silver rows ...")
    copy_txn, txn_cpu = copy_with_cpu(dsn, "silver.transactions", TXN_COLUMNS, txns)
    copy_lines, lines_cpu = copy_with_cpu(dsn, "silver.line_items", LINE_COLUMNS, lines)
    limits["copy_silver_tx_s"], limits["copy_line_items_s"] = copy_txn, copy_lines
    lines_per_tx = len(lines) / count
    # CPU per transaction with its lines, as the silver drain's figures are per transaction
    limits["copy_silver_tx_with_lines_cpu"] = {k: txn_cpu[k] + lines_per_tx * lines_cpu[k] for k in txn_cpu}
    limits["copy_silver_tx_with_lines_s"] = copy_silver_tx = 1 / (1 / copy_txn + lines_per_tx / copy_lines)
    report["line_items"] = len(lines)
    say(f"scout: {workers} silver worker(s) draining the bronze backlog ...")
    children = start_workers(settings, dsn, bootstrap, workers, work / "logs-silver", silver=True)
    try:
        drain = watch(dsn, "SELECT count(*) FROM silver.transactions", count, children, timeout=1800)
    finally:
        children.stop_all()
    return {"workers": workers, "tx_s": drain.rate, "line_items_s": drain.rate * lines_per_tx,
            "seconds": drain.seconds, "ratio_to_copy": drain.rate / copy_silver_tx, **drain.report()}
