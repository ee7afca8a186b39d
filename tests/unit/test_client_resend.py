"""The simulator resends a body only when no answer came (transport error), and says how often it did."""

from __future__ import annotations

import asyncio
import time

import httpx

from simulator import client as client_mod
from simulator.client import PostReport, _post, feed_paced


def _run(handler: httpx.MockTransport, report: PostReport) -> httpx.Response | None:
    async def go() -> httpx.Response | None:
        async with httpx.AsyncClient(base_url="http://api", transport=handler) as client:
            return await _post(client, report, json={"a": 1})
    return asyncio.run(go())


def test_a_dropped_connection_is_resent_and_counted(monkeypatch) -> None:
    monkeypatch.setattr(client_mod, "RETRY_BACKOFF_S", 0)
    calls: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.content)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(202, json={"duplicate": False})

    report = PostReport()
    response = _run(httpx.MockTransport(handler), report)
    assert response is not None and response.status_code == 202
    assert calls == [b'{"a":1}', b'{"a":1}']  # the same body both times
    assert (report.retries, report.errors, dict(report.error_kinds)) == (1, 0, {"RemoteProtocolError": 1})


def test_an_answer_is_never_resent_and_a_dead_server_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(client_mod, "RETRY_BACKOFF_S", 0)
    calls = 0

    def answers_503(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503)

    report = PostReport()
    response = _run(httpx.MockTransport(answers_503), report)
    assert response is not None and response.status_code == 503 and calls == 1 and report.retries == 0

    def refuses(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    report = PostReport()
    assert _run(httpx.MockTransport(refuses), report) is None
    assert (report.retries, report.errors, dict(report.error_kinds)) == (2, 1, {"ConnectError": 3})


def test_feed_paced_sends_items_when_due_then_one_stop_per_worker() -> None:
    async def go(items: list[int], duration_s: float) -> tuple[list[int | None], float]:
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        started = time.monotonic()
        await feed_paced(queue, items, rate=100, duration_s=duration_s, started=started, workers=2)
        return [queue.get_nowait() for _ in range(queue.qsize())], time.monotonic() - started

    got, took = asyncio.run(go([0, 1, 2, 3, 4], duration_s=10))
    assert got == [0, 1, 2, 3, 4, None, None] and took >= 0.04  # item 4 was due at 40 ms
    got, _ = asyncio.run(go(list(range(1000)), duration_s=0.05))
    assert 3 <= len(got) - 2 <= 8 and got[-2:] == [None, None]  # only what was due within 50 ms
