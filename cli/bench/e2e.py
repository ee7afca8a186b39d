"""End-to-end benchmark: every Scout process running (API, stream workers, scheduler with gold refresh and
quality checks on their default schedules) under sustained load from the simulator's client, with POST ->
silver latency, gold freshness and worker RSS over time, next to the raw limits of the same messages and rows.

Latency is measured from the moment the client builds a request (just before the POST) to the commit of the
silver transaction that holds it (``pg_xact_commit_timestamp``, so PostgreSQL runs with
track_commit_timestamp on); both clocks are this machine's.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import psutil
import psycopg

from cli.bench import raw
from cli.bench.e2e_stats import FreshnessSampler, percentiles, post_to_silver, rss_trend, spread
from cli.bench.env import BenchServices, Broker, bench_services
from cli.bench.ingest import client_session as ingest_session
from cli.bench.streams import LINE_COLUMNS, TXN_COLUMNS, Backlog
from cli.processes import Children, child_env
from cli.services import free_port, wait_until
from ingest_api.tokens import create_token
from jobs.gold import GOLD_VIEWS
from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.client import PostReport, feed_paced
from simulator.generator import Generator

SEED = 2026
API_WORKERS = 2
CONCURRENCY = 64  # requests in flight from the client
SAMPLE_EVERY_S = 0.5  # watermarks and RSS
RSS_POINTS = 120  # RSS samples kept per process in the report
START_TIMEOUT_S = 180  # API ready and a first transaction through to silver
DRAIN_TIMEOUT_S = 300  # after the load: silver holding every accepted transaction
RAW_MIN_MESSAGES = 50_000  # raw limits on at least this many of the same stream, so start-up does not dominate
FIRST_VIEW = "gold.sales_by_store_day"  # the view `scout bench gold` measures freshness on

_SAMPLE = """
SELECT extract(epoch FROM clock_timestamp())::float8, w.version,
       extract(epoch FROM pg_xact_commit_timestamp(w.xmin))::float8,
       (SELECT min(watermark) FROM ops.gold_refresh_state WHERE view_name = ANY(%(views)s)
        HAVING count(*) = cardinality(%(views)s)),
       (SELECT watermark FROM ops.gold_refresh_state WHERE view_name = %(first)s)
FROM ops.watermarks w WHERE w.name = 'silver'
"""
_ARRIVED = "SELECT count(*) FROM silver.transactions WHERE transaction_id LIKE %s"
_JOBS = "SELECT job_name, status, count(*) FROM ops.job_runs GROUP BY 1, 2 ORDER BY 1, 2"
_COMMITS = """
SELECT transaction_id, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8,
       extract(epoch FROM received_at)::float8
FROM silver.transactions WHERE transaction_id LIKE %s
"""


class StampedGenerator(Generator):
    """The simulator's generator with the bodies encoded before the load (the client shares the 2 cores, so it
    must cost little per request) and the wall-clock time each transaction is sent."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed, stores=50)
        self.sent_at: dict[str, float] = {}

    def encoded(self, count: int) -> list[tuple[str, bytes]]:
        return [(body["transaction_id"], orjson.dumps(body))
                for body in (self.transaction(n) for n in range(count))]


def _tree(pid: int) -> list[psutil.Process]:
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss_mib(pid: int) -> float:
    """RSS of a process and its descendants (the API's uvicorn workers), MiB; 0 once it is gone."""
    total = 0
    for p in _tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants."""
    total = 0.0
    for p in _tree(pid):
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _services_pids(services: BenchServices, children: Children) -> list[int]:
    """The broker (a child of this process that is not one of Scout's) and the PostgreSQL postmaster."""
    scout = {c.proc.pid for c in children.running}
    pids = [p.pid for p in psutil.Process().children() if p.pid not in scout]
    postmaster = services.work_dir / "pg" / "pgdata" / "postmaster.pid"
    if postmaster.exists():
        pids.append(int(postmaster.read_text().split()[0]))
    return pids


def _cpu_now(services: BenchServices, children: Children) -> dict[str, float]:
    """CPU seconds so far per Scout process, of the broker and PostgreSQL, of this process alone (the load
    generator and the sampler) and of the whole machine (every process, other work on it included)."""
    own = psutil.Process().cpu_times()
    machine = psutil.cpu_times()
    return {**{c.name: tree_cpu_s(c.proc.pid) for c in children.running},
            "broker + PostgreSQL": sum(tree_cpu_s(pid) for pid in _services_pids(services, children)),
            "bench client": own.user + own.system,
            "whole machine": sum(getattr(machine, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))}


class Sampler(threading.Thread):
    """Every SAMPLE_EVERY_S: silver and gold watermarks (freshness) and each process's RSS."""

    def __init__(self, dsn: str, children: Children) -> None:
        super().__init__(daemon=True)
        self.dsn, self.children = dsn, children
        self.first, self.all = FreshnessSampler(), FreshnessSampler()
        self.rss: dict[str, list[tuple[float, float]]] = {c.name: [] for c in children.running}
        self.track = True
        self.finished = threading.Event()
        self.started_at = time.monotonic()
        self.error: BaseException | None = None

    def run(self) -> None:
        views = [v.name for v in GOLD_VIEWS]
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.finished.wait(SAMPLE_EVERY_S):
                    row = conn.execute(_SAMPLE, {"views": views, "first": FIRST_VIEW}).fetchone()
                    if row is not None:
                        now, version, committed, gold_all, gold_first = row
                        for sampler, gold in ((self.first, gold_first), (self.all, gold_all)):
                            sampler.observe(now=now, silver_version=version, silver_committed_at=committed,
                                            gold_version=gold, track=self.track)
                    at = time.monotonic() - self.started_at
                    for child in self.children.running:
                        self.rss[child.name].append((at, tree_rss_mib(child.proc.pid)))
        except BaseException as exc:  # reported by the run, which stops on it
            self.error = exc

    def stop(self) -> None:
        self.finished.set()
        self.join(timeout=30)


def _start(services: BenchServices, dsn: str, port: int, silver_workers: int, log_dir: Path) -> Children:
    env = child_env(database_url=dsn, kafka_bootstrap=services.bootstrap, api_port=str(port),
                    data_dir=str(log_dir.parent), log_level="warning", worker_metrics_port="0",
                    scheduler_metrics_port="0",
                    kafka_idempotence="true" if services.broker == "kafka" else "false")
    children = Children(env, log_dir)
    children.start("api", "api", "--workers", str(API_WORKERS))
    for n in range(silver_workers):
        children.start(f"worker-{n}", "worker")  # each runs the bronze consumer and the silver loop
    children.start("scheduler", "scheduler")
    return children


def _count(dsn: str, query: str, *args: Any) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, args).fetchone()
    return int(row[0]) if row else 0


def _api_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _alive(children: Children) -> bool:
    """True, or RuntimeError naming the processes that exited."""
    dead = children.dead()
    if dead:
        raise RuntimeError(f"processes exited early: {[c.name for c in dead]}; see {children.log_dir}")
    return True


def _first_through(url: str, token: str, dsn: str, children: Children) -> None:
    """One transaction all the way to silver before the clock starts: the workers have joined the group."""
    body = Generator(SEED + 1, stores=50).transaction(0)
    wait_until(lambda: _alive(children) and _api_ready(url), timeout=START_TIMEOUT_S,
               what="the API to be ready")
    response = httpx.post(f"{url}/v1/transactions", json=body, headers={"Authorization": f"Bearer {token}"},
                          timeout=30)
    response.raise_for_status()
    wait_until(lambda: _alive(children) and _count(dsn, _ARRIVED, body["transaction_id"]) == 1,
               timeout=START_TIMEOUT_S, what="a first transaction to reach silver", interval=0.5)


def _drain(dsn: str, pattern: str, accepted: int, children: Children) -> int:
    """Wait until silver holds every accepted transaction, or it stopped growing for a minute."""
    deadline, last, moved = time.monotonic() + DRAIN_TIMEOUT_S, -1, time.monotonic()
    while True:
        _alive(children)
        have = _count(dsn, _ARRIVED, pattern)
        if have > last:
            last, moved = have, time.monotonic()
        if have >= accepted or time.monotonic() > deadline or time.monotonic() - moved > 60:
            return have
        time.sleep(SAMPLE_EVERY_S)


def _wait_gold(sampler: Sampler, timeout: float) -> None:
    sampler.track = False
    deadline = time.monotonic() + timeout
    while sampler.all.pending and time.monotonic() < deadline and sampler.is_alive():
        time.sleep(SAMPLE_EVERY_S)


def _latency(gen: StampedGenerator, dsn: str, pattern: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(_COMMITS, [pattern]).fetchall()
    lags, missing = post_to_silver(gen.sent_at, ((r[0], r[1]) for r in rows))
    server = [r[1] - r[2] for r in rows]
    first_sent = min(gen.sent_at.values(), default=0.0)
    last_commit = max((r[1] for r in rows), default=first_sent)
    return {"transactions": len(rows), "missing": missing,
            "tx_s": len(rows) / max(last_commit - first_sent, 1e-6),
            "post_to_silver_s": {**percentiles(lags), "mean": statistics.fmean(lags) if lags else None,
                                 "max": max(lags, default=None)},
            "api_receipt_to_silver_s": percentiles(server)}


def _job_runs(dsn: str) -> dict[str, dict[str, int]]:
    """Scheduler runs per job and status, to show the jobs did run under the load."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(_JOBS).fetchall()
    runs: dict[str, dict[str, int]] = {}
    for job, status, count in rows:
        runs.setdefault(str(job), {})[str(status)] = int(count)
    return runs


def _raw_limits(services: BenchServices, dsn: str, sent: int) -> dict[str, float]:
    """Kafka produce of the same messages and COPY of the same silver rows, after Scout's processes stopped:
    the run's transactions, continued along the same stream up to RAW_MIN_MESSAGES."""
    gen = Generator(SEED, stores=50)
    envelopes = [Envelope.wrap(Transaction.model_validate(gen.transaction(n)), source="api")
                 for n in range(max(sent, RAW_MIN_MESSAGES))]
    backlog = Backlog(envelopes, [(e.transaction.store_id.encode(), e.to_bytes()) for e in envelopes])
    scratch = Settings(kafka_bootstrap=services.bootstrap, topic="bench.e2e.raw", dead_letter_topic="bench.e2e.raw.dlq")
    ensure_topics(scratch)
    produce = raw.kafka_produce(services.bootstrap, scratch.topic, backlog.messages)
    txns, lines = backlog.silver_rows()
    copy_txn = raw.copy_rows(dsn, "silver.transactions", TXN_COLUMNS, txns)
    copy_lines = raw.copy_rows(dsn, "silver.line_items", LINE_COLUMNS, lines)
    per_tx = len(lines) / max(len(txns), 1)
    return {"kafka_produce_msg_s": produce, "copy_silver_tx_s": copy_txn, "copy_line_items_s": copy_lines,
            "copy_silver_tx_with_lines_s": 1 / (1 / copy_txn + per_tx / copy_lines)}


def _load(url: str, token: str, gen: StampedGenerator, bodies: list[tuple[str, bytes]], rate: float,
          duration: float) -> PostReport:
    return asyncio.run(_open_loop(url, token, gen, bodies, rate, duration))


async def _open_loop(url: str, token: str, gen: StampedGenerator, bodies: list[tuple[str, bytes]], rate: float,
                     duration: float) -> PostReport:
    """The simulator's open-loop pacing (``feed_paced``), CONCURRENCY in flight, with aiohttp and the bodies
    encoded beforehand."""
    report = PostReport()
    queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=CONCURRENCY * 2)

    async def worker(session: aiohttp.ClientSession) -> None:
        while (item := await queue.get()) is not None:
            tid, body = item
            gen.sent_at[tid] = time.time()
            try:
                async with session.post("/v1/transactions", data=body) as response:
                    await response.read()
                report.by_status[response.status] += 1
            except (TimeoutError, aiohttp.ClientError):
                report.errors += 1
            report.sent += 1

    async with ingest_session(url, token, CONCURRENCY) as session:
        started = time.monotonic()
        workers = [asyncio.create_task(worker(session)) for _ in range(CONCURRENCY)]
        await feed_paced(queue, bodies, rate=rate, duration_s=duration, started=started, workers=CONCURRENCY)
        await asyncio.gather(*workers)
        report.elapsed_s = time.monotonic() - started
    return report


def run_once(services: BenchServices, *, duration: float, rate: float, silver_workers: int,
             say: Callable[[str], None]) -> dict[str, Any]:
    dsn = services.fresh_database("bench_e2e")
    settings = Settings(kafka_bootstrap=services.bootstrap)
    ensure_topics(settings)
    token = create_token(dsn, name="bench-e2e", scopes=["ingest"], store_ids=None, rate_limit_per_s=1e7).secret
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    children = _start(services, dsn, port, silver_workers, services.work_dir / "logs-e2e")
    pattern = f"TXN-{SEED}-%"
    try:
        say(f"starting the API ({API_WORKERS} workers), {silver_workers} stream worker(s) and the scheduler ...")
        _first_through(url, token, dsn, children)
        sampler = Sampler(dsn, children)
        sampler.start()
        say(f"load: {rate:,.0f} tx/s offered for {duration:g} s, {CONCURRENCY} in flight ...")
        gen = StampedGenerator(SEED)
        bodies = gen.encoded(int(rate * duration) + 1)
        cpu_before, wall = _cpu_now(services, children), time.monotonic()
        report = _load(url, token, gen, bodies, rate, duration)
        del bodies
        wall = time.monotonic() - wall
        cpu = {name: (used - cpu_before[name]) / wall for name, used in _cpu_now(services, children).items()}
        say(f"sent {report.sent:,} ({report.achieved_rate:,.0f}/s); waiting for silver and gold to catch up ...")
        accepted = report.by_status.get(202, 0)
        _drain(dsn, pattern, accepted, children)
        _wait_gold(sampler, timeout=3 * settings.gold_refresh_interval_s + 60)
        sampler.stop()
        if sampler.error is not None:
            raise RuntimeError(f"sampling failed: {sampler.error!r}")
        silver = _latency(gen, dsn, pattern)
        jobs = _job_runs(dsn)
    finally:
        children.stop_all()
    say("raw: Kafka produce and COPY of the same messages and rows ...")
    limits = _raw_limits(services, dsn, report.sent)
    errors = report.errors + sum(n for status, n in report.by_status.items() if not 200 <= status < 300)
    accepted_s = accepted / report.elapsed_s if report.elapsed_s else 0.0
    return {
        "duration_s": duration, "offered_tx_s": rate, "silver_workers": silver_workers, "api_workers": API_WORKERS,
        "concurrency": CONCURRENCY, "sent": report.sent, "accepted": accepted, "errors": errors,
        "statuses": {str(k): v for k, v in sorted(report.by_status.items())},
        "achieved_tx_s": report.achieved_rate, "accepted_tx_s": accepted_s, "silver": silver,
        "gold_freshness": {"sample_every_s": SAMPLE_EVERY_S, "interval_s": settings.gold_refresh_interval_s,
                           "first_view": sampler.first.summary(), "all_views": sampler.all.summary()},
        "rss": {name: {**rss_trend(samples), "samples": samples[:: max(1, len(samples) // RSS_POINTS)]}
                for name, samples in sampler.rss.items()},
        "cpu_cores_during_load": cpu, "job_runs": jobs, "raw": limits,
        "ratios": {"accepted_to_kafka_produce": accepted_s / limits["kafka_produce_msg_s"],
                   "silver_to_copy": silver["tx_s"] / limits["copy_silver_tx_with_lines_s"]},
    }


def bench_e2e(broker: Broker, cache_dir: Path, *, duration: float, rate: float, silver_workers: int,
              repeats: int, say: Callable[[str], None]) -> dict[str, Any]:
    """``repeats`` runs, each on fresh services; ``summary`` holds every figure's median, min and max."""
    runs = []
    for n in range(repeats):
        if repeats > 1:
            say(f"run {n + 1} of {repeats}")
        with bench_services(broker, cache_dir, commit_timestamps=True) as services:
            runs.append(run_once(services, duration=duration, rate=rate, silver_workers=silver_workers, say=say))
    return {"runs": runs, "summary": spread(runs)}
