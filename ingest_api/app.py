"""The ingest API application factory.

Example::

    app = create_app(Settings())          # uvicorn.run(app) — what `scout api` does

Tests pass their own ``publisher``, ``tokens`` or ``idempotency`` store; otherwise the lifespan builds
the real ones (aiokafka, PostgreSQL) from the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import psycopg
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ingest_api.auth import Authenticator, TokenLookup
from ingest_api.errors import install_handlers
from ingest_api.fastpath import SinglePostFastPath
from ingest_api.idempotency import IdempotencyStore, PgIdempotencyStore
from ingest_api.middleware import HttpMetrics
from ingest_api.openapi import install_openapi
from ingest_api.publisher import Publisher
from ingest_api.recent import RecentHashes
from ingest_api.routes import alerts, analytics, health, simulator, status, transactions, uploads
from ingest_api.service import Ingest
from ingest_api.token_cache import TokenCache
from ingest_api.tokens import TokenStore
from ingest_api.uploads.service import Uploads
from observability.multiprocess import metrics_app, process_exited
from scout.db import open_async_pool
from scout.settings import Settings
from simulator.feed import Feed

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 600.0
DESCRIPTION = """Point-of-sale devices post transactions here with a device token
(`Authorization: Bearer sct_…`, from `scout tokens create`).

Every error has one shape: `{"error": {"code": "...", "message": "...", "details": [{"field": "items.0.qty",
"reason": "..."}]}}`. 429 and 503 carry `Retry-After`; resending after a 503 is always safe: the event hash
makes a resend land once.
"""


async def _purge_expired_keys(store: PgIdempotencyStore) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL_S)
        try:
            deleted = await store.purge_expired()
            log.info("idempotency: purged %d expired keys", deleted)
        except psycopg.Error as exc:
            log.warning("idempotency: purge failed, next try in %.0fs: %r", PURGE_INTERVAL_S, exc)


def _lifespan(settings: Settings, publisher: Publisher | None, tokens: TokenLookup | None,
              idempotency: IdempotencyStore | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = None
        if settings.database_url is not None:
            pool = await open_async_pool(settings, name="api", min_size=1, max_size=settings.api_db_pool_size)
        app.state.pool = pool
        app.state.publisher = publisher or Publisher(settings)
        cache = None
        if tokens is None and pool is not None and settings.token_cache_ttl_s > 0:
            cache = TokenCache(TokenStore(pool), conninfo=settings.database_dsn(), ttl_s=settings.token_cache_ttl_s)
            await cache.start()
        app.state.authenticator = Authenticator(settings, tokens or cache or (TokenStore(pool) if pool else None))
        store = idempotency or (PgIdempotencyStore(pool, retention_s=settings.idempotency_retention_s,
                                                   abandoned_s=max(30.0, 3 * settings.produce_timeout_s))
                                if pool else None)
        app.state.idempotency = store
        recent = RecentHashes(max_size=settings.recent_hash_cache_size, ttl_s=settings.recent_hash_ttl_s)
        app.state.ingest = Ingest(settings, app.state.publisher, recent)
        app.state.feed = Feed(app.state.publisher.publish)
        purge = asyncio.create_task(_purge_expired_keys(store)) if isinstance(store, PgIdempotencyStore) else None
        app.state.uploads = Uploads(settings, app.state.publisher, pool) if pool else None
        await app.state.publisher.start()
        if app.state.uploads is not None:
            await _resume_uploads(app.state.uploads)
        try:
            yield
        finally:
            if app.state.uploads is not None:
                await app.state.uploads.close()
            if purge is not None:
                purge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge
            await status.close(app)
            await app.state.feed.stop()
            await app.state.publisher.stop()
            if cache is not None:
                await cache.stop()
            if pool is not None:
                await pool.close()
            process_exited()

    return lifespan


async def _resume_uploads(uploads: Uploads) -> None:
    """Uploads left running by a process that died go on here; a database hiccup must not stop the API."""
    try:
        await uploads.resume_orphans()
    except Exception:
        log.exception("could not look for interrupted uploads; they resume when an API process next starts")


def create_app(settings: Settings, *, publisher: Publisher | None = None, tokens: TokenLookup | None = None,
               idempotency: IdempotencyStore | None = None) -> FastAPI:
    app = FastAPI(
        title="Scout ingest API",
        version="1",
        summary="Point-of-sale transactions in; every 2xx is a promise that the event will land once.",
        description=DESCRIPTION,
        lifespan=_lifespan(settings, publisher, tokens, idempotency),
    )
    app.state.settings = settings
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(transactions.router)
    app.include_router(alerts.router)
    app.include_router(analytics.router)
    app.include_router(simulator.router)
    app.include_router(uploads.router)
    status.install(app, settings)
    app.mount("/metrics", metrics_app())
    install_openapi(app, settings)
    app.add_middleware(SinglePostFastPath)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(HttpMetrics)
    return app
