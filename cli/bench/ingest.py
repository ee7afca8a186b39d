"""Ingest benchmark: `scout api` processes under load from an async HTTP client on the same machine —
single-POST throughput, p50/p95/p99 latency at a fixed rate, batch throughput — next to raw limits measured
in the same run: Kafka produce of the same messages with the API's own producer settings, batched as the batch
endpoint batches them and awaited one at a time with as many in flight as the HTTP client (each after a warm-up,
the median of 3 passes), and a no-work request (GET /healthz) through the same client and server. The
no-op and single-POST phases also report the API processes' CPU per request, and the batch phase per
transaction: figures other work on the machine moves less than a rate.

A single POST can go no faster than the lower of the two ceilings at the same concurrency: it is one HTTP
round trip and one awaited produce (plus the token look-up in PostgreSQL)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from cli.bench import raw
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
    queue = iter([orjson.dumps(bodies[i:i + size]) for i in range(0, len(bodies), size)])
    accepted = 0
    statuses: dict[str, int] = {}  # per batch: HTTP status, and the first error code of a refused one

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for chunk in queue:
            async with session.post("/v1/transactions:batch", data=chunk) as response:
                answer = orjson.loads(await response.read())
                if response.status == 200:
                    accepted += answer["accepted"]
                    outcome = "200" if answer["accepted"] == size else f"200 with {answer['accepted']} accepted"
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


def bench_ingest(bootstrap: str, dsn: str, work: Path, *, count: int, api_workers: int, say: Any) -> dict[str, Any]:
    settings = Settings(kafka_bootstrap=bootstrap, topic="bench.ingest", dead_letter_topic="bench.ingest.dlq",
                        topic_partitions=3)
    ensure_topics(settings)
    token = create_token(dsn, name="bench", scopes=["ingest"], store_ids=None, rate_limit_per_s=1e7).secret
    single = _bodies(count, seed=101)
    rated = _bodies(max(count // 2, 1000), seed=102)
    batch = _bodies(count * 4, seed=103)
    say("raw: Kafka produce of the same messages with the API's producer: batched as the batch endpoint does "
        "(500 per publish, 4 in flight), and one at a time awaited, 64 in flight; warm-up, median of 3 ...")
    produce_runs = raw.kafka_produce_batched(settings, _messages(batch))
    produce = produce_runs["msg_s"]
    awaited = raw.kafka_produce_awaited(settings, _messages(single), 64)
    port = free_port()
    env = child_env(database_url=dsn, kafka_bootstrap=bootstrap, topic=settings.topic,
                    dead_letter_topic=settings.dead_letter_topic, api_port=str(port), data_dir=str(work),
                    log_level="warning")
    children = Children(env, work / "logs-ingest")
    children.start("api", "api", "--workers", str(api_workers))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), timeout=60, what="the API to be ready")
        api_pid = children.running[0].proc.pid
        say(f"raw: {count:,} GET /healthz (no work) through the same client and server, 64 in flight ...")
        noop = _with_api_cpu(api_pid, count, lambda: asyncio.run(_closed_loop(url, token, None, 64, count)))
        say(f"scout: {count:,} single POSTs, 64 in flight ...")
        encoded = [orjson.dumps(b) for b in single]
        closed = _with_api_cpu(api_pid, count, lambda: asyncio.run(_closed_loop(url, token, encoded, 64, count)))
        say(f"scout: {len(rated):,} single POSTs at a fixed 1,000 tx/s ...")
        fixed = asyncio.run(_fixed_rate(url, token, [orjson.dumps(b) for b in rated], 1000.0))
        say(f"scout: {len(batch):,} transactions in batches of 500 ...")
        batches = _with_api_cpu(api_pid, len(batch), lambda: asyncio.run(_batches(url, token, batch, 500, 4)))
        batches["api_cpu_us_per_tx"] = batches.pop("api_cpu_us_per_request")
    finally:
        children.stop_all()
    ceiling = min(noop["tx_s"], awaited["msg_s"])
    return {"api_workers": api_workers, "client": "aiohttp, bodies encoded beforehand",
            "raw": {"kafka_produce_msg_s": produce, "kafka_produce_batched": produce_runs,
                    "kafka_produce_awaited_64": awaited,
                    "http_noop_64": {"req_s": noop["tx_s"], "p50_ms": noop["p50_ms"], "p99_ms": noop["p99_ms"],
                                     "api_cpu_us_per_request": noop["api_cpu_us_per_request"]}},
            "single": {**closed, "ratio_to_noop": closed["tx_s"] / noop["tx_s"],
                       "ratio_to_produce": closed["tx_s"] / produce,
                       "ratio_to_ceiling": closed["tx_s"] / ceiling,
                       "api_cpu_ratio_to_noop": noop["api_cpu_us_per_request"] / closed["api_cpu_us_per_request"]},
            "fixed_rate_1000": fixed,
            "batch": {**batches, "ratio_to_produce": batches["tx_s"] / produce}}


def _with_api_cpu(api_pid: int, requests: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run``'s result with the CPU the API processes spent per request meanwhile (µs): unlike a rate, it
    hardly moves when other work shares the machine."""
    from cli.bench.e2e import tree_cpu_s  # e2e imports this module

    before = tree_cpu_s(api_pid)
    result = run()
    return {**result, "api_cpu_us_per_request": (tree_cpu_s(api_pid) - before) * 1e6 / requests}


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
