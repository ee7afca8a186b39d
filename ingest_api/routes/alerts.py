"""GET /v1/alerts: quality alerts from ops.alerts (active by default), newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ingest_api.deps import PoolDep
from ingest_api.errors import ApiError, ErrorResponse
from quality.alerts import list_alerts_async

router = APIRouter(prefix="/v1", tags=["alerts"])


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
            responses={503: {"model": ErrorResponse, "description": "No database configured or reachable"}})
async def get_alerts(
    pool: PoolDep,
    status: Annotated[Literal["active", "resolved", "all"], Query()] = "active",
    rule: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertList:
    if pool is None:
        raise ApiError(503, "database_unavailable", "this API has no database configured (SCOUT_DATABASE_URL)")
    async with pool.connection() as conn:
        rows = await list_alerts_async(conn, status=status, rule=rule, limit=limit)
    return AlertList(alerts=[Alert.model_validate(r) for r in rows])
