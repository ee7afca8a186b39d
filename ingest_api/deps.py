"""FastAPI dependencies as ``Annotated`` aliases: settings, publisher, database pool, a size-limited body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from ingest_api.errors import ApiError
from ingest_api.publisher import Publisher
from scout.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_publisher(request: Request) -> Publisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


def get_pool(request: Request) -> AsyncConnectionPool | None:
    return request.app.state.pool  # type: ignore[no-any-return]


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes ``api_max_body_bytes``."""
    limit: int = request.app.state.settings.api_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


SettingsDep = Annotated[Settings, Depends(get_settings)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
PoolDep = Annotated[AsyncConnectionPool | None, Depends(get_pool)]
BodyDep = Annotated[bytes, Depends(read_body)]
