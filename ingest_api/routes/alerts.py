"""GET /v1/alerts: quality alerts from ops.alerts (active by default), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ingest_api.auth import require_scope
from ingest_api.deps import PoolDep
from ingest_api.errors import database_unavailable
from ingest_api.openapi import error_responses
from quality.alerts import list_alerts_async

router = APIRouter(prefix="/v1", tags=["alerts"], dependencies=[Depends(require_scope("read"))])


class Alert(BaseModel):
    id: int
    rule: str
    subject: str
    severity: Literal["critical", "warning"]
    status: Literal["active", "resolved"]
    message: str
    details: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    count: int
    resolved_at: datetime | None


class AlertList(BaseModel):
    alerts: list[Alert]


@router.get("/alerts", response_model=AlertList, summary="Quality alerts",
            responses=error_responses(401, 403, 422, 429, 503))
async def get_alerts(
    pool: PoolDep,
    status: Annotated[Literal["active", "resolved", "all"], Query()] = "active",
    rule: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertList:
    if pool is None:
        raise database_unavailable()
    try:
        async with pool.connection() as conn:
            rows = await list_alerts_async(conn, status=status, rule=rule, limit=limit)
    except psycopg.OperationalError as exc:  # includes the pool's timeout
        raise database_unavailable(exc) from None
    return AlertList(alerts=[Alert.model_validate(r) for r in rows])
