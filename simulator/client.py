"""Post simulated transactions to a running ingest API at a target rate with bounded concurrency.

Example::

    report = asyncio.run(post_transactions("http://127.0.0.1:8000", Generator(42), rate=50, duration_s=10,
                                           token="sct_…"))
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from simulator.generator import Generator


@dataclass
class PostReport:
    sent: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> int:
        return self.by_status.get(202, 0)

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0


async def post_transactions(base_url: str, gen: Generator, *, rate: float, duration_s: float,
                            concurrency: int = 16, start_n: int = 0, stop: asyncio.Event | None = None,
                            token: str | None = None) -> PostReport:
    """Open-loop pacing: transaction n is due at start + n/rate; late ones are sent at once.

    ``token`` is a device token with the ``ingest`` scope, sent as ``Authorization: Bearer``.
    """
    report = PostReport()
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=concurrency * 2)
    started = time.monotonic()

    async def worker(client: httpx.AsyncClient) -> None:
        while (n := await queue.get()) is not None:
            try:
                response = await client.post("/v1/transactions", json=gen.transaction(n))
                report.by_status[response.status_code] += 1
            except httpx.HTTPError:
                report.errors += 1
            report.sent += 1

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10, headers=headers) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        n = start_n
        while time.monotonic() - started < duration_s and not (stop and stop.is_set()):
            due = started + (n - start_n) / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await queue.put(n)
            n += 1
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    report.elapsed_s = time.monotonic() - started
    return report
