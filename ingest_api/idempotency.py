"""Idempotency-Key with Stripe's rules, kept in ``ops.idempotency_keys``.

Example::

    return await answer_once(store, owner=principal.owner, key=key, fingerprint=request_fingerprint(...),
                             produce=lambda: ingest(...))

- no key: the request runs as usual;
- a new key: the request runs; a final 2xx answer is stored and replayed for the retention window
  (with ``Idempotent-Replayed: true``) to any later request with the same key and the same content (the
  transactions in canonical form: key order, whitespace and number spelling do not count);
- the same key with other content (or another endpoint): 409 ``idempotency_key_reused``;
- the same key while the first request still runs: 409 ``idempotency_key_in_progress`` (retry soon);
- errors (422, 403, 503 ...) and partial answers are not stored: the key is released and a retry runs again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from fastapi import Response
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel
from starlette.types import Send

from ingest_api.errors import ApiError
from scout.db import q

log = logging.getLogger(__name__)

KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class Stored:
    """What is kept under a key: the request's fingerprint and, once done, the answer."""

    fingerprint: str
    status_code: int | None
    body: bytes | None


@dataclass(frozen=True)
class Reply:
    """A route's answer: status, body (a model, or its JSON already encoded), headers, and whether it is final
    (may be replayed)."""

    status_code: int
    body: BaseModel | bytes
    final: bool = True
    headers: dict[str, str] = field(default_factory=dict)


class IdempotencyStore(Protocol):
    async def claim(self, owner: str, key: str, fingerprint: str) -> Stored | None: ...

    async def complete(self, owner: str, key: str, fingerprint: str, status_code: int, body: bytes) -> None: ...

    async def release(self, owner: str, key: str, fingerprint: str) -> None: ...


class PgIdempotencyStore:
    def __init__(self, pool: AsyncConnectionPool, *, retention_s: int, abandoned_s: float,
                 timeout_s: float = 2.0) -> None:
        self.pool = pool
        self.retention_s = retention_s
        self.abandoned_s = abandoned_s
        self.timeout_s = timeout_s

    async def claim(self, owner: str, key: str, fingerprint: str) -> Stored | None:
        """None when this request now holds the key; else what an earlier request left under it."""
        params = {"owner": owner, "key": key, "fingerprint": fingerprint, "retention_s": self.retention_s,
                  "abandoned_s": self.abandoned_s}
        for _ in range(3):  # the holder may release between our insert and our read
            async with self.pool.connection(timeout=self.timeout_s) as conn:
                cur = await conn.execute(q("idempotency_claim"), params)
                if await cur.fetchone() is not None:
                    return None
                cur = await conn.execute(q("idempotency_get"), params)
                row = await cur.fetchone()
            if row is not None:
                fingerprint_, status, body = row
                return Stored(str(fingerprint_), status, bytes(body) if body is not None else None)
        raise psycopg.OperationalError(f"idempotency key {key!r} kept changing hands")

    async def complete(self, owner: str, key: str, fingerprint: str, status_code: int, body: bytes) -> None:
        async with self.pool.connection(timeout=self.timeout_s) as conn:
            await conn.execute(q("idempotency_complete"), {"owner": owner, "key": key, "fingerprint": fingerprint,
                                                           "status_code": status_code, "response_body": body})

    async def release(self, owner: str, key: str, fingerprint: str) -> None:
        async with self.pool.connection(timeout=self.timeout_s) as conn:
            await conn.execute(q("idempotency_release"), {"owner": owner, "key": key, "fingerprint": fingerprint})

    async def purge_expired(self, *, batch: int = 10_000) -> int:
        """Delete answers older than the retention window; returns how many."""
        total = 0
        while True:
            async with self.pool.connection(timeout=self.timeout_s) as conn:
                cur = await conn.execute(q("idempotency_purge"), {"retention_s": self.retention_s, "limit": batch})
                total += cur.rowcount
            if cur.rowcount < batch:
                return total


def request_fingerprint(method: str, path: str, contents: Iterable[bytes]) -> str:
    """What makes two requests the same for a key: endpoint and content, each transaction in its canonical
    form (the event hash's), so key order, whitespace and number spelling do not make another request."""
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    for content in contents:
        digest.update(b"%d\n" % len(content))
        digest.update(content)
    return digest.hexdigest()


def _unavailable(exc: Exception, retry_after_s: int) -> ApiError:
    log.warning("idempotency: store unreachable: %r", exc)
    return ApiError(503, "idempotency_unavailable", "Idempotency-Key answers cannot be checked now; retry later",
                    headers={"Retry-After": str(retry_after_s)})


def _replay_or_refuse(stored: Stored, key: str, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise ApiError(409, "idempotency_key_reused",
                       f"Idempotency-Key {key!r} was used for a different request; use a new key")
    if stored.status_code is None or stored.body is None:
        raise ApiError(409, "idempotency_key_in_progress",
                       f"a request with Idempotency-Key {key!r} is still being processed; retry shortly",
                       headers={"Retry-After": "1"})
    return Response(stored.body, status_code=stored.status_code, media_type="application/json",
                    headers={REPLAYED_HEADER: "true"})


async def answer_once(store: IdempotencyStore | None, *, owner: str, key: str | None, fingerprint: str,
                      retry_after_s: int, produce: Callable[[], Awaitable[Reply]]) -> Response:
    """Run ``produce`` at most once per (owner, key) and body; replay its final answer afterwards."""
    if key is None:
        outcome = await produce()
        return Response(_encoded(outcome), status_code=outcome.status_code, media_type="application/json",
                        headers=outcome.headers)
    if store is None:
        raise ApiError(503, "idempotency_unavailable", "Idempotency-Key needs the database (SCOUT_DATABASE_URL)",
                       headers={"Retry-After": str(retry_after_s)})
    try:
        stored = await store.claim(owner, key, fingerprint)
    except psycopg.Error as exc:
        raise _unavailable(exc, retry_after_s) from None
    if stored is not None:
        return _replay_or_refuse(stored, key, fingerprint)
    try:
        outcome = await produce()
    except BaseException:
        await _quiet(store.release(owner, key, fingerprint))
        raise
    body = _encoded(outcome)
    if outcome.final and 200 <= outcome.status_code < 300:
        await _quiet(store.complete(owner, key, fingerprint, outcome.status_code, body))
    else:
        await _quiet(store.release(owner, key, fingerprint))
    return Response(body, status_code=outcome.status_code, media_type="application/json", headers=outcome.headers)


async def send_reply(send: Send, outcome: Reply) -> None:
    """Send a reply as ASGI messages: what ``answer_once`` without a key answers (the same status, headers in the
    same order, body), without building a Response object."""
    body = _encoded(outcome)
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in outcome.headers.items()]
    headers += [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": outcome.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _encoded(outcome: Reply) -> bytes:
    body = outcome.body
    return body if isinstance(body, bytes) else body.model_dump_json().encode()


async def _quiet(step: Awaitable[None]) -> None:
    """Bookkeeping after the work is done must not turn a delivered answer into an error."""
    try:
        await step
    except psycopg.Error as exc:
        log.warning("idempotency: could not record the answer (the key frees itself later): %r", exc)
