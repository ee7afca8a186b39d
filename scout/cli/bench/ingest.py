"""Ingest benchmark: `scout api` processes under load from an async HTTP client on the same machine —
single-POST throughput, p50/p95/p99 latency at a fixed rate, batch throughput — next to the raw Kafka
produce rate of the same messages measured in the same run."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from ingest_api.tokens import create_token
from scout.cli.bench import raw
from scout.cli.processes import Children, child_env
from scout.contract import Envelope, Transaction
from scout.kafka import ensure_topics
from scout.services import free_port, wait_until
from scout.settings import Settings
from simulator.generator import Generator


def _bodies(count: int, seed: int) -> list[dict[str, Any]]:
    gen = Generator(seed=seed, stores=50)
    return [gen.transaction(n) for n in range(count)]


async def _closed_loop(url: str, token: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """As fast as the API answers, ``concurrency`` requests in flight."""
    queue = iter(bodies)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker(client: httpx.AsyncClient) -> None:
        for body in queue:
            started = time.perf_counter()
            response = await client.post("/v1/transactions", json=body)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"tx_s": len(latencies) / elapsed, "statuses": statuses, **_percentiles(latencies)}


async def _fixed_rate(url: str, token: str, bodies: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """Open loop: request n is sent at start + n/rate whatever the answers do; latency per request."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=httpx.Timeout(30, pool=None)) as client:

        async def one(body: dict[str, Any]) -> None:
            started = time.perf_counter()
            try:
                response = await client.post("/v1/transactions", json=body)
                code = response.status_code
            except httpx.HTTPError:
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
    chunks = [bodies[i:i + size] for i in range(0, len(bodies), size)]
    queue = iter(chunks)
    accepted = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        for chunk in queue:
            response = await client.post("/v1/transactions:batch", json=chunk)
            if response.status_code == 200:
                accepted += sum(1 for r in response.json()["results"] if r["status"] == "accepted")

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"batch_size": size, "tx_s": accepted / elapsed, "accepted": accepted, "sent": len(bodies)}


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
    say("raw: Kafka produce of the same messages ...")
    envelopes = [Envelope.wrap(Transaction.model_validate(b), source="api") for b in single]
    produce = raw.kafka_produce(bootstrap, settings.topic, [(e.transaction.store_id.encode(), e.to_bytes())
                                                                for e in envelopes])
    port = free_port()
    env = child_env(database_url=dsn, kafka_bootstrap=bootstrap, topic=settings.topic,
                    dead_letter_topic=settings.dead_letter_topic, api_port=str(port), data_dir=str(work),
                    log_level="warning")
    children = Children(env, work / "logs-ingest")
    children.start("api", "api", "--workers", str(api_workers))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), timeout=60, what="the API to be ready")
        say(f"scout: {count:,} single POSTs, 64 in flight ...")
        closed = asyncio.run(_closed_loop(url, token, single, 64))
        say(f"scout: {len(rated):,} single POSTs at a fixed 1,000 tx/s ...")
        fixed = asyncio.run(_fixed_rate(url, token, rated, 1000.0))
        say(f"scout: {len(batch):,} transactions in batches of 500 ...")
        batches = asyncio.run(_batches(url, token, batch, 500, 4))
    finally:
        children.stop_all()
    return {"api_workers": api_workers, "raw": {"kafka_produce_msg_s": produce},
            "single": {**closed, "ratio_to_produce": closed["tx_s"] / produce}, "fixed_rate_1000": fixed,
            "batch": {**batches, "ratio_to_produce": batches["tx_s"] / produce}}


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
