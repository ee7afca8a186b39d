"""Ingest benchmark: `scout api` processes under load from an async HTTP client on the same machine —
single-POST throughput, p50/p95/p99 latency at a fixed rate, batch throughput — next to raw limits measured
in the same run: Kafka produce of the same messages with the API's own producer settings, batched as the batch
endpoint batches them and awaited one at a time with as many in flight as the HTTP client (each after a warm-up,
the median of 3 passes), and a no-work request (GET /healthz) through the same client and server.

After a warm-up of both, the no-op and the single POSTs run in turn, three passes of at least 20,000 requests
each (the median pass is reported, and the median of the three pass-to-pass ratios); the batches run in three
passes too, each on new connections, with how busy each API worker was (the connections of a pass opened at once
are often all accepted by one worker). Every phase reports the CPU
spent per request by the client (this process), the API processes and the broker: the ratio of the whole costs
is what two shared cores allow, and the same ratio with the API charged no more for a POST than for a no-op is
what would be left if Scout's own work were free (the client sending a body, the broker taking the message).

A single POST can go no faster than the lower of the two ceilings at the same concurrency: it is one HTTP
round trip and one awaited produce."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import psutil

from cli.bench import raw
from cli.bench.streams import _cpu
from cli.processes import Children, child_env
from cli.services import free_port, wait_until
from ingest_api.tokens import create_token
from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator


def _bodies(count: int, seed: int) -> list[dict[str, Any]]:
    gen = Generator(seed=seed, stores=50)
    return [gen.transaction(n) for n in range(count)]


def _messages(bodies: list[dict[str, Any]]) -> list[raw.Message]:
    """What the API would produce for these bodies: key, envelope bytes, headers."""
    envelopes = [Envelope.wrap(Transaction.model_validate(b), source="api") for b in bodies]
    return [(e.transaction.store_id.encode(), e.to_bytes(), [("event_hash", e.event_hash.encode()), ("source", b"api")])
            for e in envelopes]


def client_session(url: str, token: str, connections: int) -> aiohttp.ClientSession:
    """aiohttp with bodies encoded beforehand: the client shares the 2 cores, so it must cost little."""
    return aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=connections),
                                 timeout=aiohttp.ClientTimeout(total=60),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


async def _closed_loop(url: str, token: str, bodies: list[bytes] | None, concurrency: int,
                       count: int) -> dict[str, Any]:
    """As fast as the API answers, ``concurrency`` requests in flight; ``bodies=None``: GET /healthz (no work)."""
    queue = iter(bodies if bodies is not None else [b""] * count)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(session: aiohttp.ClientSession) -> None:
        for body in queue:
            started = time.perf_counter()
            request = session.get("/healthz") if bodies is None else session.post("/v1/transactions", data=body)
            async with request as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1

    async with client_session(url, token, concurrency) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"tx_s": len(latencies) / elapsed, "statuses": statuses, **_percentiles(latencies)}


async def _fixed_rate(url: str, token: str, bodies: list[bytes], rate: float) -> dict[str, Any]:
    """Open loop: request n is sent at start + n/rate whatever the answers do; latency per request."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with client_session(url, token, 256) as session:

        async def one(body: bytes) -> None:
            started = time.perf_counter()
            try:
                async with session.post("/v1/transactions", data=body) as response:
                    await response.read()
                    code = response.status
            except (aiohttp.ClientError, TimeoutError):
                code = 0  # no answer in time: counted, latency still recorded
            latencies.append(time.perf_counter() - started)
            statuses[code] = statuses.get(code, 0) + 1

        start = time.perf_counter()
        tasks = []
        for n, body in enumerate(bodies):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {"offered_tx_s": rate, "achieved_tx_s": len(bodies) / elapsed, "statuses": statuses,
            **_percentiles(latencies)}


async def _batches(url: str, token: str, bodies: list[dict[str, Any]], size: int, concurrency: int) -> dict[str, Any]:
    queue = iter([(orjson.dumps(bodies[i:i + size]), len(bodies[i:i + size])) for i in range(0, len(bodies), size)])
    accepted = 0
    statuses: dict[str, int] = {}  # per batch: HTTP status, and the first error code of a refused one

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for chunk, sent in queue:
            async with session.post("/v1/transactions:batch", data=chunk) as response:
                answer = orjson.loads(await response.read())
                if response.status == 200:
                    accepted += answer["accepted"]
                    outcome = "200" if answer["accepted"] == sent else f"200 with {answer['accepted']} accepted"
                else:
                    outcome = f"{response.status} {answer.get('error', {}).get('code', '')}".strip()
                statuses[outcome] = statuses.get(outcome, 0) + 1

    async with client_session(url, token, concurrency) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"batch_size": size, "tx_s": accepted / elapsed, "accepted": accepted, "sent": len(bodies),
            "statuses": statuses}


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "mean_ms": statistics.fmean(ordered) * 1000}


PHASE_MIN = 20_000  # requests per measured pass: shorter passes are dominated by warm-up and timer ticks
# batch requests (and raw publishes) in flight: with 4, the client's 4 connections were often taken by one of the
# 2 API workers (each connection stays with the worker that accepted it), halving the rate from run to run
BATCHES_IN_FLIGHT = 8
PASSES = 3  # the no-op and single-POST passes alternate this many times; medians are reported


def bench_ingest(bootstrap: str, dsn: str, work: Path, *, count: int, api_workers: int, say: Any,
                 min_requests: int = PHASE_MIN) -> dict[str, Any]:
    """``count`` single POSTs per pass (at least ``min_requests``), 2 x ``count`` transactions in batches per pass."""
    count = max(count, min_requests)
    settings = Settings(kafka_bootstrap=bootstrap, topic="bench.ingest", dead_letter_topic="bench.ingest.dlq",
                        topic_partitions=3)
    ensure_topics(settings)
    token = create_token(dsn, name="bench", scopes=["ingest"], store_ids=None, rate_limit_per_s=1e7).secret
    warm = _bodies(count // 4, seed=100)
    single = [_bodies(count, seed=101 + n) for n in range(PASSES)]
    rated = _bodies(max(count // 2, 1000), seed=110)
    batch_bodies = [_bodies(count * 2, seed=111 + n) for n in range(PASSES)]
    batch = batch_bodies[0]
    broker = Cpu.of_listener(bootstrap)
    # The bodies are some million objects: a full collection of them would stall the client (the load generator)
    # for hundreds of milliseconds, which the fixed-rate phase would count as the API's latency.
    gc.collect()
    gc.freeze()
    say("raw: Kafka produce of the same messages with the API's producer: batched as the batch endpoint does "
        f"(500 per publish, {BATCHES_IN_FLIGHT} in flight), and one at a time awaited, 64 in flight; warm-up, "
        "median of 3 ...")
    messages = _messages(batch)
    before = (time.process_time(), broker.seconds())
    produce_runs = raw.kafka_produce_batched(settings, messages, concurrency=BATCHES_IN_FLIGHT, warmup=2_000,
                                             repeats=3)
    client_s, broker_s = time.process_time() - before[0], broker.seconds() - before[1]
    produced = 2_000 + 3 * len(messages)
    produce_runs["cpu_us"] = {"client": client_s * 1e6 / produced, "broker": broker_s * 1e6 / produced,
                              "total": (client_s + broker_s) * 1e6 / produced}
    produce = produce_runs["msg_s"]
    awaited = raw.kafka_produce_awaited(settings, _messages(single[0]), 64)
    port = free_port()
    env = child_env(database_url=dsn, kafka_bootstrap=bootstrap, topic=settings.topic,
                    dead_letter_topic=settings.dead_letter_topic, api_port=str(port), data_dir=str(work),
                    log_level="warning")
    children = Children(env, work / "logs-ingest")
    children.start("api", "api", "--workers", str(api_workers))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), timeout=60, what="the API to be ready")
        api = Cpu(children.running[0].proc.pid)
        say(f"warm-up: {len(warm):,} GET /healthz and {len(warm):,} single POSTs (not measured) ...")
        asyncio.run(_closed_loop(url, token, None, 64, len(warm)))
        asyncio.run(_closed_loop(url, token, [orjson.dumps(b) for b in warm], 64, len(warm)))
        noops, posts = [], []
        for n in range(PASSES):
            say(f"pass {n + 1} of {PASSES}: {count:,} GET /healthz (no work), then {count:,} single POSTs, "
                "64 in flight, through the same client and server ...")
            noops.append(_measured(api, broker, count, partial(_run_closed_loop, url, token, None, count)))
            posts.append(_measured(api, broker, count, partial(_run_closed_loop, url, token,
                                                               [orjson.dumps(b) for b in single[n]], count)))
        say(f"scout: {len(rated):,} single POSTs at a fixed 1,000 tx/s ...")
        fixed = asyncio.run(_fixed_rate(url, token, [orjson.dumps(b) for b in rated], 1000.0))
        workers = ApiWorkers(children.running[0].proc.pid)
        batch_passes = []
        for n in range(PASSES):
            say(f"scout: pass {n + 1} of {PASSES}: {len(batch):,} transactions in batches of 500, "
                f"{BATCHES_IN_FLIGHT} in flight ...")
            busy = workers.start()
            batch_passes.append(_measured(api, broker, len(batch), partial(_run_batches, url, token, batch_bodies[n])))
            batch_passes[-1]["api_worker_busy"] = busy()
        batches = _median_pass(batch_passes)
    finally:
        children.stop_all()
        gc.unfreeze()
    noop, closed = _median_pass(noops), _median_pass(posts)
    ratios = sorted(p["tx_s"] / o["tx_s"] for o, p in zip(noops, posts, strict=True))
    ceiling = min(noop["tx_s"], awaited["msg_s"])
    return {"api_workers": api_workers, "client": "aiohttp, bodies encoded beforehand",
            "requests_per_pass": count, "passes": PASSES, "batches_in_flight": BATCHES_IN_FLIGHT,
            "raw": {"kafka_produce_msg_s": produce, "kafka_produce_batched": produce_runs,
                    "kafka_produce_awaited_64": awaited,
                    "http_noop_64": {"req_s": noop["tx_s"], "p50_ms": noop["p50_ms"], "p99_ms": noop["p99_ms"],
                                     "api_cpu_us_per_request": noop["cpu_us"]["api"], "cpu_us": noop["cpu_us"],
                                     "runs_req_s": [o["tx_s"] for o in noops],
                                     "runs_cpu_us": [o["cpu_us"] for o in noops]}},
            "single": {**closed, "api_cpu_us_per_request": closed["cpu_us"]["api"],
                       "runs_tx_s": [p["tx_s"] for p in posts], "runs_cpu_us": [p["cpu_us"] for p in posts],
                       "ratio_to_noop": ratios[len(ratios) // 2], "runs_ratio_to_noop": ratios,
                       "ratio_to_produce": closed["tx_s"] / produce,
                       "ratio_to_ceiling": closed["tx_s"] / ceiling,
                       "api_cpu_ratio_to_noop": noop["cpu_us"]["api"] / closed["cpu_us"]["api"],
                       **cpu_bounds(noop["cpu_us"], closed["cpu_us"])},
            "fixed_rate_1000": fixed,
            "batch": {**batches, "api_cpu_us_per_tx": batches["cpu_us"]["api"],
                      "runs_tx_s": [b["tx_s"] for b in batch_passes],
                      "runs_api_worker_busy": [b["api_worker_busy"] for b in batch_passes],
                      "ratio_to_produce": batches["tx_s"] / produce,
                      "cpu_ratio_to_produce": produce_runs["cpu_us"]["total"] / batches["cpu_us"]["total"]}}


def cpu_bounds(noop: dict[str, float], post: dict[str, float]) -> dict[str, float]:
    """What the CPU spent per request says about the ratio of POSTs to no-ops when the two cores are the limit:
    the ratio of their whole costs (client + API + broker), and the same if the API spent no more on a POST than
    on a no-op (Scout's own work free: what is left is the client sending a body and the broker taking it).

    Example::

        >>> cpu_bounds({"client": 60, "api": 85, "broker": 0, "total": 145},
        ...            {"client": 80, "api": 150, "broker": 20, "total": 250})["cpu_ratio_if_scout_work_were_free"]
        0.7837837837837838
    """
    free = post["total"] - post["api"] + noop["api"]
    return {"cpu_ratio_to_noop": noop["total"] / post["total"],
            "cpu_ratio_if_scout_work_were_free": noop["total"] / free}


class Cpu:
    """CPU seconds so far of a process tree, or of nothing (no process found)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    @classmethod
    def of_listener(cls, bootstrap: str) -> Cpu:
        """The process listening on the first bootstrap address's port (the broker, on this machine)."""
        port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return cls(conn.pid)
        return cls(None)

    def seconds(self) -> float:
        from cli.bench.e2e import tree_cpu_s  # e2e imports this module

        return tree_cpu_s(self.pid) if self.pid is not None else 0.0


class ApiWorkers:
    """How busy each API worker process was over a phase (CPU seconds per second): a client whose few
    connections were all accepted by one worker shows as one busy worker and one idle."""

    def __init__(self, master_pid: int) -> None:
        self.master = psutil.Process(master_pid)

    def start(self) -> Callable[[], list[float]]:
        workers = [p for p in self.master.children() if "spawn_main" in " ".join(_cmdline(p))]
        before, started = [_cpu(p) for p in workers], time.perf_counter()

        def busy() -> list[float]:
            elapsed = time.perf_counter() - started
            return sorted(((_cpu(p) - b) / elapsed for p, b in zip(workers, before, strict=True)), reverse=True)

        return busy


def _measured(api: Cpu, broker: Cpu, requests: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run``'s result with the CPU spent per request meanwhile (µs) by this process (the HTTP client), the
    API processes and the broker: unlike a rate, it hardly moves when other work shares the machine."""
    before = (time.process_time(), api.seconds(), broker.seconds())
    result = run()
    after = (time.process_time(), api.seconds(), broker.seconds())
    client, api_s, broker_s = ((b - a) * 1e6 / requests for a, b in zip(before, after, strict=True))
    return {**result, "cpu_us": {"client": client, "api": api_s, "broker": broker_s,
                                 "total": client + api_s + broker_s}}


def _run_closed_loop(url: str, token: str, bodies: list[bytes] | None, count: int) -> dict[str, Any]:
    return asyncio.run(_closed_loop(url, token, bodies, 64, count))


def _run_batches(url: str, token: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    return asyncio.run(_batches(url, token, bodies, 500, BATCHES_IN_FLIGHT))


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _median_pass(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The pass with the median rate."""
    return sorted(passes, key=lambda p: p["tx_s"])[len(passes) // 2]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
