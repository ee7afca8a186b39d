"""FastAPI dependencies as ``Annotated`` aliases: settings, publisher, pool, stores, size-limited bodies, callers.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, one thread
hop per dependency per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from psycopg_pool import AsyncConnectionPool

from ingest_api.auth import Principal, require_scope
from ingest_api.errors import ApiError
from ingest_api.idempotency import KEY_PATTERN
from ingest_api.publisher import Publisher
from ingest_api.service import count
from scout.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_publisher(request: Request) -> Publisher:
    return request.app.state.publisher


async def get_pool(request: Request) -> AsyncConnectionPool | None:
    return request.app.state.pool


def body_reader(limit_setting: str, endpoint: str) -> Callable[[Request], Awaitable[bytes]]:
    """A dependency reading the body, refused with 413 as soon as it passes the named size setting."""

    def too_large(message: str) -> ApiError:
        count(endpoint, "rejected", "payload_too_large")
        return ApiError(413, "payload_too_large", message)

    async def read_body(request: Request) -> bytes:
        limit: int = getattr(request.app.state.settings, limit_setting)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large(f"body of {declared} bytes exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    return read_body


SettingsDep = Annotated[Settings, Depends(get_settings)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
PoolDep = Annotated[AsyncConnectionPool | None, Depends(get_pool)]
IngestCaller = Annotated[Principal, Depends(require_scope("ingest"))]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", pattern=KEY_PATTERN,
           description="Optional. The same key and the same transactions (compared in canonical form: key order "
                       "and number spelling do not count) within the retention window replay the first answer "
                       "(`Idempotent-Replayed: true`); the same key with other transactions is 409."),
]
