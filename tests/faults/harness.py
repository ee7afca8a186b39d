"""What every fault scenario shares: the pipeline as processes, steady load through the API, the
invariants read from the database, and the recovery figures.

The load behaves like a careful point-of-sale device: every transaction is sent with an Idempotency-Key
and resent (same body, same key) after a connection error, a 5xx, a 409 ``idempotency_key_in_progress``
or a 429, until it gets a 2xx or a definitive 4xx, or until its retry deadline passes. Every attempt is
recorded with its answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cli.processes import Child, Children, child_env
from cli.services import free_port
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token

RETRYABLE = {409, 429}  # idempotency key in progress, rate limited: resend later


# --- the pipeline as processes ---------------------------------------------------------------


@dataclass
class Stack:
    """`scout api`, workers and `scout scheduler` on one database and one broker, as a user runs them."""

    settings: Settings
    children: Children
    url: str
    token: str

    def child(self, name: str) -> Child:
        return next(c for c in reversed(self.children.running) if c.name == name)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        child = self.child(name)
        os.killpg(child.proc.pid, sig)
        child.proc.wait(30)

    def start(self, name: str, *args: str) -> Child:
        return self.children.start(name, *args)

    def alive(self) -> list[str]:
        return [c.name for c in self.children.running if c.proc.poll() is None]

    def workers(self) -> list[Child]:
        return [c for c in self.children.running if c.name.startswith("worker") and c.proc.poll() is None]


@contextmanager
def running_stack(settings: Settings, *, workers: tuple[tuple[str, ...], ...] = ((), ())) -> Iterator[Stack]:
    """The API, one `scout worker` per entry of ``workers`` (its extra arguments) and the scheduler."""
    ensure_topics(settings)
    port = free_port()
    env = child_env(
        database_url=settings.database_dsn(), kafka_bootstrap=settings.kafka_bootstrap, topic=settings.topic,
        dead_letter_topic=settings.dead_letter_topic, stream_app_id=settings.stream_app_id, api_port=str(port),
        data_dir=str(settings.data_dir), gold_refresh_interval_s="1", worker_metrics_port="0",
        scheduler_metrics_port="0", silver_idle_interval_s="0.1", bronze_batch_within_s="0.2",
        retry_max_backoff_s="1", produce_timeout_s="3", retry_after_s="1", job_retry_delay_s="1",
    )
    _, token = cli_token(env, "--name", "fault load", "--all-stores", "--rate-limit", "100000")
    children = Children(env, settings.data_dir / "logs")
    children.start("api", "api")
    for n, extra in enumerate(workers):
        children.env = {**env, "SCOUT_WORKER_WEB_PORT": str(free_port())}
        children.start(f"worker-{n}", "worker", *extra)
    children.env = env
    children.start("scheduler", "scheduler")
    stack = Stack(settings, children, f"http://127.0.0.1:{port}", token)
    try:
        wait_api_ready(stack.url)
        yield stack
    finally:
        stop_and_show_logs(children)


# --- steady load ----------------------------------------------------------------------------------


@dataclass
class Attempt:
    started: float  # time.monotonic()
    ended: float
    wall_ended: float  # time.time(), to compare with the database's clock (same machine)
    status: int | None  # None: no HTTP answer (connection refused, reset, timed out)
    error: str | None = None
    event_hash: str | None = None
    position: tuple[int, int] | None = None  # (partition, offset) Kafka acknowledged, from a 2xx body


@dataclass
class Sent:
    n: int
    body: dict[str, Any]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.body["store_id"], self.body["transaction_id"]

    @property
    def acknowledged(self) -> Attempt | None:
        return next((a for a in self.attempts if a.status is not None and 200 <= a.status < 300), None)

    @property
    def refused(self) -> bool:
        """A definitive 4xx (not one that asks to retry): the transaction must be nowhere."""
        return self.acknowledged is None and any(
            a.status is not None and 400 <= a.status < 500 and a.status not in RETRYABLE for a in self.attempts)


class Load:
    """Send transactions through the API at a steady rate from a thread of its own; record every answer.

    ``bodies`` are sent in order, one every 1/rate seconds, until ``stop()`` (or until they run out).
    """

    def __init__(self, stack: Stack, *, rate: float = 20.0, seed: int = 1, bodies: list[dict[str, Any]] | None = None,
                 retry_for_s: float = 90.0, concurrency: int = 8, idempotency_keys: bool = True) -> None:
        self.url, self.token = stack.url, stack.token
        self.rate, self.retry_for_s, self.concurrency = rate, retry_for_s, concurrency
        self.idempotency_keys = idempotency_keys
        self._generator = Generator(seed=seed)
        self._bodies = bodies
        self.sent: list[Sent] = []
        self.in_flight = 0
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # shown by the next check instead of vanishing with the thread
            self.error = exc
            raise

    def _check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the load stopped: {self.error!r}") from self.error

    def _body(self, n: int) -> dict[str, Any] | None:
        if self._bodies is not None:
            return self._bodies[n] if n < len(self._bodies) else None
        return self._generator.transaction(n)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self, timeout: float = 180) -> list[Sent]:
        """Stop sending new transactions; wait for the ones still being retried."""
        self._stopping.set()
        self._thread.join(timeout)
        self._check()
        assert not self._thread.is_alive(), "the load did not finish its retries in time"
        return self.sent

    def join(self, timeout: float = 600) -> list[Sent]:
        """Wait until every body was sent and answered (for a finite ``bodies`` list)."""
        self._thread.join(timeout)
        self._check()
        assert not self._thread.is_alive(), "the load did not finish in time"
        return self.sent

    def acknowledged_after(self, moment: float) -> int:
        self._check()
        return sum(1 for s in list(self.sent) for a in s.attempts
                   if a.started >= moment and a.status is not None and 200 <= a.status < 300)

    def failures_after(self, moment: float) -> int:
        self._check()
        return sum(1 for s in list(self.sent) for a in s.attempts
                   if a.started >= moment and (a.status is None or a.status >= 500 or a.status in RETRYABLE))

    def acknowledged(self) -> int:
        return sum(1 for s in list(self.sent) if s.acknowledged is not None)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(10.0, connect=2.0), limits=limits,
                                     headers={"Authorization": f"Bearer {self.token}"}) as client:
            tasks: list[asyncio.Task[None]] = []
            slots = asyncio.Semaphore(self.concurrency)  # a device has few connections: when all are
            started = time.monotonic()  # busy the next transaction waits (the rate drops, nothing piles up)
            n = 0
            while not self._stopping.is_set():
                body = self._body(n)
                if body is None:
                    break
                sent = Sent(n, body)
                await slots.acquire()
                self.sent.append(sent)
                task = asyncio.create_task(self._deliver(client, sent))
                task.add_done_callback(lambda _: slots.release())
                tasks.append(task)
                n += 1
                delay = started + n / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.gather(*tasks)

    async def _deliver(self, client: httpx.AsyncClient, sent: Sent) -> None:
        deadline = time.monotonic() + self.retry_for_s
        headers = {"Idempotency-Key": f"fault-{sent.n}"} if self.idempotency_keys else {}
        while True:
            began = time.monotonic()
            self.in_flight += 1
            try:
                response = await client.post("/v1/transactions", json=sent.body, headers=headers)
            except httpx.HTTPError as exc:
                sent.attempts.append(Attempt(began, time.monotonic(), time.time(), None, type(exc).__name__))
                response = None
            finally:
                self.in_flight -= 1
            if response is not None:
                ok = 200 <= response.status_code < 300
                answer = response.json() if ok else {}
                sent.attempts.append(Attempt(began, time.monotonic(), time.time(), response.status_code,
                                             None if ok else response.text[:200], answer.get("event_hash"),
                                             (answer["partition"], answer["offset"]) if ok else None))
                if ok or (400 <= response.status_code < 500 and response.status_code not in RETRYABLE):
                    return
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.3)


# --- a fault and the recovery after it ----------------------------------------------------------


@dataclass
class Fault:
    at: float
    wall: float

    @classmethod
    def now(cls) -> Fault:
        return cls(time.monotonic(), time.time())


def steady(load: Load, *, after: float, count: int, what: str, timeout: float = 120) -> None:
    eventually(lambda: load.acknowledged_after(after), until=lambda n: n >= count, timeout=timeout, what=what)


def finish(stack: Stack, load: Load, fault: Fault, tmp_path: Path, name: str, *,
           latency_window_s: float | None = None, **extra: object) -> dict[str, object]:
    """Let the load run on a little, stop it, assert delivery, report the figures (with ``latency_window_s``
    also the latency of what was acknowledged that long before the fault and after it)."""
    steady(load, after=time.monotonic(), count=40, what="the API to accept transactions again")
    sent = load.stop()
    timings = assert_delivered(stack.settings.database_dsn(), sent)
    figures = {**recovery(sent, stack.settings.database_dsn(), fault_at=fault.at, fault_wall=fault.wall),
               "drained_after_load_s": round(timings["drained_s"], 2), **extra}
    if latency_window_s is not None:
        figures["before"] = latency(sent, start=fault.at - latency_window_s, end=fault.at)
        figures["after"] = latency(sent, start=fault.at, end=fault.at + latency_window_s)
    report(tmp_path, name, figures)
    assert figures["acknowledged"] == figures["transactions"], "a device that kept resending got no 2xx"
    return figures



# --- invariants, from the database ------------------------------------------------------------


@dataclass(frozen=True)
class SilverRow:
    event_hash: str
    total_amount: Decimal
    item_count: int
    lines: int
    processed_at: float  # epoch seconds


def _silver_rows(dsn: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[SilverRow]]:
    keys = sorted(set(keys))
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT t.store_id, t.transaction_id, t.event_hash, t.total_amount, t.item_count, "
            "       (SELECT count(*) FROM silver.line_items l WHERE l.txn_id = t.txn_id), "
            "       extract(epoch FROM t.processed_at)::float8 "
            "FROM silver.transactions t "
            "JOIN unnest(%s::text[], %s::text[]) AS k (store_id, transaction_id) "
            "  ON t.store_id = k.store_id AND t.transaction_id = k.transaction_id",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
    found: dict[tuple[str, str], list[SilverRow]] = {}
    for store, txn, event_hash, total, item_count, lines, processed in rows:
        found.setdefault((store, txn), []).append(
            SilverRow(event_hash.strip(), Decimal(total), int(item_count), int(lines), float(processed)))
    return found


def _backlog(dsn: str) -> int:
    """Bronze rows not yet through silver."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM bronze.pending").fetchone()
    assert row is not None
    return int(row[0])


def _hashes_in_silver(dsn: str, hashes: list[str]) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM silver.transactions WHERE event_hash = ANY(%s::char(64)[])",
                           (hashes,)).fetchone()
    assert row is not None
    return int(row[0])


def _whereabouts(dsn: str, acked: list[Sent]) -> list[dict[str, Any]]:
    """For acknowledged transactions not in silver: what bronze, quarantine and dead letters hold of them."""
    by_hash = {s.acknowledged.event_hash: s for s in acked if s.acknowledged is not None}
    with psycopg.connect(dsn) as conn:
        present = {str(h).strip() for (h,) in conn.execute(
            "SELECT event_hash FROM silver.transactions WHERE event_hash = ANY(%s::char(64)[])",
            (list(by_hash),)).fetchall()}
        out = []
        for event_hash, s in by_hash.items():
            if event_hash in present:
                continue
            store, txn = s.key
            acked_at = s.acknowledged.position if s.acknowledged is not None else None
            out.append({
                "key": s.key, "event_hash": event_hash, "attempts": [(a.status, a.error) for a in s.attempts],
                "acknowledged_at": acked_at,
                "landed_offsets": conn.execute("SELECT kafka_partition, next_offset FROM ops.stream_offsets "
                                               "ORDER BY 1").fetchall(),
                "bronze": conn.execute("SELECT id, event_hash, id NOT IN (SELECT bronze_id FROM bronze.pending) "
                                       "AS processed FROM bronze.transactions "
                                       "WHERE store_id = %s AND transaction_id = %s", (store, txn)).fetchall(),
                "silver_by_key": conn.execute("SELECT event_hash FROM silver.transactions "
                                              "WHERE store_id = %s AND transaction_id = %s", (store, txn)).fetchall(),
                "quarantine": conn.execute("SELECT reasons FROM silver.quarantine WHERE store_id = %s "
                                           "AND transaction_id = %s", (store, txn)).fetchall(),
                "dead_letters": conn.execute("SELECT reason FROM ops.dead_letters WHERE position(%s IN raw) > 0",
                                             (txn.encode(),)).fetchall(),
            })
    return out[:5]


def totals(dsn: str) -> dict[str, tuple[int, Decimal]]:
    with psycopg.connect(dsn) as conn:
        silver = conn.execute("SELECT count(*), coalesce(sum(total_amount), 0) FROM silver.transactions").fetchone()
        gold = conn.execute("SELECT coalesce(sum(orders), 0), coalesce(sum(revenue), 0) "
                            "FROM gold.sales_by_store_day").fetchone()
    assert silver is not None and gold is not None
    return {"silver": (int(silver[0]), Decimal(silver[1])), "gold": (int(gold[0]), Decimal(gold[1]))}


def assert_delivered(dsn: str, sent: list[Sent], *, timeout: float = 180) -> dict[str, float]:
    """The delivery guarantees, read from the database once the pipeline caught up by itself.

    - every transaction answered 2xx (on any attempt) is in silver exactly once, whole (its line items),
      with the total it was sent with;
    - a transaction that never got a 2xx is either nowhere or whole and once (a request cut off or
      answered 503 while Kafka already had it may still land: that is why devices resend the same body);
      one refused with a definitive 4xx is nowhere;
    - nothing is left half-way: no bronze row waits for silver;
    - gold agrees with silver after the scheduler's next refresh.

    Returns when each condition held, in seconds from now (to report recovery).
    """
    began = time.monotonic()
    acked = [s for s in sent if s.acknowledged is not None]
    hashes = [s.acknowledged.event_hash for s in acked if s.acknowledged and s.acknowledged.event_hash]
    assert len(hashes) == len(acked)
    try:
        eventually(lambda: (_hashes_in_silver(dsn, hashes), _backlog(dsn)),
                   until=lambda r: r[0] == len(set(hashes)) and r[1] == 0, timeout=timeout,
                   what=f"every acknowledged transaction in silver ({len(set(hashes))}) and no bronze backlog")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; where the missing ones are: {_whereabouts(dsn, acked)}") from None
    drained = time.monotonic() - began
    rows = _silver_rows(dsn, [s.key for s in sent])
    problems: list[str] = []
    for s in sent:
        found = rows.get(s.key, [])
        expected_total = Decimal(s.body["total_amount"])
        if len(found) > 1:
            problems.append(f"{s.key} is in silver {len(found)} times")
            continue
        if s.acknowledged is not None and not found:
            problems.append(f"{s.key} was answered {s.acknowledged.status} but is not in silver")
            continue
        if s.refused and found:
            problems.append(f"{s.key} was refused ({[a.status for a in s.attempts]}) but is in silver")
            continue
        if found:
            row = found[0]
            if s.acknowledged is not None and row.event_hash != s.acknowledged.event_hash:
                problems.append(f"{s.key}: silver holds {row.event_hash}, the API acknowledged "
                                f"{s.acknowledged.event_hash}")
            lines = len(s.body["items"])
            if row.total_amount != expected_total or row.lines != lines or row.item_count != lines:
                problems.append(f"{s.key} is half there: total {row.total_amount} of {expected_total}, "
                                f"{row.lines} of {len(s.body['items'])} line items")
    assert not problems, f"{len(problems)} delivery violations, first: {problems[:10]}"
    eventually(lambda: totals(dsn), until=lambda t: t["gold"] == t["silver"], timeout=timeout,
               what="gold totals to equal silver totals after a scheduled refresh")
    return {"drained_s": drained, "gold_agrees_s": time.monotonic() - began}


# --- recovery figures -------------------------------------------------------------------------------


def recovery(sent: list[Sent], dsn: str, *, fault_at: float, fault_wall: float) -> dict[str, Any]:
    """How long clients were refused and data was delayed around the fault at ``fault_at`` (monotonic).

    - ``refused_for_s``: from the first request refused (no answer, 5xx, 409, 429) after the fault to the
      end of the last one (0: clients never noticed);
    - ``max_delay_s``: the longest any acknowledged transaction took from its 2xx to silver, among those
      acknowledged from the fault on; ``baseline_delay_s``: the median before the fault.
    """
    attempts = [a for s in sent for a in s.attempts]
    failed = [a for a in attempts if a.started >= fault_at
              and (a.status is None or a.status >= 500 or a.status in RETRYABLE)]
    refused_for = max(a.ended for a in failed) - min(a.started for a in failed) if failed else 0.0
    rows = _silver_rows(dsn, [s.key for s in sent if s.acknowledged is not None])
    before: list[float] = []
    after: list[float] = []
    for s in sent:
        ack = s.acknowledged
        if ack is None or s.key not in rows:
            continue
        delay = max(0.0, rows[s.key][0].processed_at - ack.wall_ended)
        (after if ack.wall_ended >= fault_wall else before).append(delay)
    before.sort()
    statuses: dict[str, int] = {}
    for a in attempts:
        label = str(a.status) if a.status is not None else (a.error or "error")
        statuses[label] = statuses.get(label, 0) + 1
    return {
        "transactions": len(sent),
        "acknowledged": sum(1 for s in sent if s.acknowledged is not None),
        "attempts": statuses,
        "refused_for_s": round(refused_for, 2),
        "baseline_delay_s": round(before[len(before) // 2], 2) if before else None,
        "max_delay_s": round(max(after), 2) if after else None,
    }


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * 0.99))], 3)


def latency(sent: list[Sent], *, start: float, end: float) -> dict[str, Any]:
    """Latency of what was acknowledged between ``start`` and ``end`` (monotonic): ``request_p99_s`` of the
    requests answered 2xx, and ``acknowledged_p99_s`` from a transaction's first attempt to its 2xx, retries
    included (what a device waits: a transaction in flight at the fault counts after it)."""
    acked = [(s, s.acknowledged) for s in sent if s.acknowledged is not None and start <= s.acknowledged.ended < end]
    requests = [a.ended - a.started for _, a in acked]
    waits = [a.ended - s.attempts[0].started for s, a in acked]
    return {"acknowledged": len(acked), "request_p99_s": _p99(requests), "acknowledged_p99_s": _p99(waits)}


def report(tmp_path: Path, fault: str, figures: dict[str, Any]) -> None:
    """Print the recovery figures and keep them in recovery.json in the test's tmp dir."""
    out = tmp_path / "recovery.json"
    data = json.loads(out.read_text()) if out.exists() else {}
    data[fault] = figures
    out.write_text(json.dumps(data, indent=2, sort_keys=True))
    print(f"recovery[{fault}]: {json.dumps(figures, sort_keys=True)} -> {out}")
