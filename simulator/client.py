"""Post simulated transactions to a running ingest API at a target rate with bounded concurrency.

Example::

    report = asyncio.run(post_transactions("http://127.0.0.1:8000", Generator(42), rate=50, duration_s=10,
                                           token="sct_…"))
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import count as counting
from typing import TypeVar

import httpx

from simulator.faults import FaultPlan, FaultRecord, Sent
from simulator.source import TransactionSource

# A device resends a body when the connection failed before an answer came: ingest is idempotent by event
# hash, so a resend of something that did land answers 202 with duplicate=true instead of counting twice.
ATTEMPTS = 3
RETRY_BACKOFF_S = 0.2


@dataclass
class PostReport:
    sent: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    retries: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> int:
        return self.by_status.get(202, 0)

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0


T = TypeVar("T")


async def feed_paced(queue: asyncio.Queue[T | None], items: Iterable[T], *, rate: float, duration_s: float,
                     started: float, workers: int, stop: asyncio.Event | None = None) -> None:
    """Open-loop pacing: item k is due at ``started`` + k/rate (late ones go at once) until ``duration_s`` has
    passed, ``stop`` is set or the items run out; then one ``None`` per worker. An item is taken from
    ``items`` only when it is due (a generator may build or record it then)."""
    iterator = iter(items)
    k = 0
    while time.monotonic() - started < duration_s and not (stop and stop.is_set()):
        delay = started + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        item = next(iterator, None)
        if item is None:
            break
        await queue.put(item)
        k += 1
    for _ in range(workers):
        await queue.put(None)


async def _post(client: httpx.AsyncClient, report: PostReport, **request: object) -> httpx.Response | None:
    """POST with resends on transport errors (never on an answer); None when every attempt failed.

    Each failed attempt is counted by its kind (``ConnectError``, ``RemoteProtocolError``...) so a run that
    needed resends says so even when all of them got through in the end.
    """
    for attempt in range(ATTEMPTS):
        try:
            return await client.post("/v1/transactions", **request)  # type: ignore[arg-type]  # httpx keyword arguments, passed through
        except httpx.TransportError as exc:
            report.error_kinds[type(exc).__name__] += 1
            if attempt + 1 < ATTEMPTS:
                report.retries += 1
                await asyncio.sleep(RETRY_BACKOFF_S * (attempt + 1))
    report.errors += 1
    return None


async def post_transactions(base_url: str, gen: TransactionSource, *, rate: float, duration_s: float,
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
            response = await _post(client, report, json=gen.transaction(n))
            if response is not None:
                report.by_status[response.status_code] += 1
            report.sent += 1

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10, headers=headers) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        await feed_paced(queue, counting(start_n), rate=rate, duration_s=duration_s, started=started,
                         workers=concurrency, stop=stop)
        await asyncio.gather(*workers)
    report.elapsed_s = time.monotonic() - started
    return report


@dataclass(frozen=True)
class Answer:
    """What the API answered to one sent body: status (0 on a connection error) and the event hash of a 2xx."""

    n: int
    index: int
    fault: str | None
    status: int
    event_hash: str | None
    duplicate: bool


@dataclass
class PlanReport(PostReport):
    requests: int = 0
    answers: list[Answer] = field(default_factory=list)
    records: list[FaultRecord] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(1 for a in self.answers if 200 <= a.status < 300)


async def _send_one(client: httpx.AsyncClient, n: int, sent: list[Sent], report: PlanReport) -> None:
    """Bodies of one transaction in order (a resend follows its original)."""
    for index, s in enumerate(sent):
        status, event_hash, duplicate = 0, None, False
        if isinstance(s.body, bytes):
            response = await _post(client, report, content=s.body, headers={"Content-Type": "application/json"})
        else:
            response = await _post(client, report, json=s.body)
        if response is not None:
            status = response.status_code
            if 200 <= status < 300:
                body = response.json()
                event_hash, duplicate = body.get("event_hash"), bool(body.get("duplicate"))
        report.by_status[status] += 1
        report.requests += 1
        report.answers.append(Answer(n, index, s.fault, status, event_hash, duplicate))


async def post_plan(base_url: str, gen: TransactionSource, plan: FaultPlan, *, rate: float, duration_s: float,
                    token: str | None = None, concurrency: int = 16, start_n: int = 0,
                    stop: asyncio.Event | None = None, count: int | None = None,
                    on_progress: Callable[[PlanReport], None] | None = None) -> PlanReport:
    """Like ``post_transactions`` with faults applied: every body sent, every answer and fault kept.

    ``rate`` counts transactions (a resend fault sends two bodies for one transaction); ``count`` stops after
    that many transactions (a finite source such as a replayed file).
    """
    report = PlanReport()
    queue: asyncio.Queue[tuple[int, list[Sent]] | None] = asyncio.Queue(maxsize=concurrency * 2)
    started = time.monotonic()

    async def worker(client: httpx.AsyncClient) -> None:
        while (job := await queue.get()) is not None:
            await _send_one(client, job[0], job[1], report)
            report.sent += 1
            if on_progress is not None:
                report.elapsed_s = time.monotonic() - started
                on_progress(report)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
        def jobs() -> Iterator[tuple[int, list[Sent]]]:
            for n in counting(start_n) if count is None else range(start_n, start_n + count):
                sent, record = plan.apply(n, gen.transaction(n), gen)
                if record is not None:
                    report.records.append(record)
                yield n, sent

        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        await feed_paced(queue, jobs(), rate=rate, duration_s=duration_s, started=started, workers=concurrency,
                         stop=stop)
        await asyncio.gather(*workers)
    report.elapsed_s = time.monotonic() - started
    return report
