"""The ingest API application factory.

Example::

    app = create_app(Settings())          # uvicorn.run(app) — what `scout api` does
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from ingest_api.errors import install_handlers
from ingest_api.publisher import Publisher
from ingest_api.routes import alerts, health, transactions
from scout.db import open_async_pool
from scout.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.publisher = Publisher(settings)
        app.state.pool = None
        if settings.database_url is not None:
            app.state.pool = await open_async_pool(settings, name="api", min_size=1, max_size=4)
        await app.state.publisher.start()
        try:
            yield
        finally:
            await app.state.publisher.stop()
            if app.state.pool is not None:
                await app.state.pool.close()

    app = FastAPI(
        title="Scout ingest API",
        version="1",
        summary="Point-of-sale transactions in; every 202 is a promise that the event will land once.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_handlers(app)
    app.include_router(health.router)
    app.include_router(transactions.router)
    app.include_router(alerts.router)
    app.mount("/metrics", make_asgi_app())
    return app
