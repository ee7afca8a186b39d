"""Liveness (/healthz: the process answers) and readiness (/readyz: Kafka with the topic, PostgreSQL reachable)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ingest_api.deps import PoolDep, PublisherDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database_ok(pool: PoolDep) -> bool:
    if pool is None:
        return False
    try:
        async with asyncio.timeout(2):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        return True
    except Exception:
        return False


@router.get("/readyz", summary="Readiness: Kafka reachable with the transactions topic, PostgreSQL reachable")
async def readyz(publisher: PublisherDep, pool: PoolDep) -> JSONResponse:
    kafka_problem, database = await asyncio.gather(publisher.ready(), _database_ok(pool))
    checks = {"kafka": kafka_problem or "ok", "database": "ok" if database else "unreachable"}
    ready = kafka_problem is None and database
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                          status_code=200 if ready else 503)
