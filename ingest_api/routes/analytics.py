"""Analyst routes: POST /v1/query, the dashboard summary, a store's page, upsell and trends (thin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints

from ingest_api import analytics
from ingest_api.auth import require_scope
from ingest_api.deps import PoolDep, SettingsDep
from ingest_api.errors import ErrorResponse
from ingest_api.openapi import error_responses
from ingest_api.query_guard import MAX_QUERY_CHARS

# Every route below needs a token with the `read` scope (or `admin`).
READ_DEPENDENCIES: list[Any] = [Depends(require_scope("read"))]

IDENT = r"^[^\x00-\x1f]+$"  # like the contract's identifiers: no control characters

router = APIRouter(prefix="/v1", tags=["analytics"], dependencies=READ_DEPENDENCIES)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Query refused (the message says why), failed or timed out"},
    404: {"model": ErrorResponse, "description": "No gold data for the store"},
    **error_responses(401, 403, 422, 429, 503),
}


class QueryRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=MAX_QUERY_CHARS,
                     description="One SELECT over gold.* objects; a LIMIT is added or capped.",
                     examples=["SELECT store_id, sum(revenue) FROM gold.sales_by_store_day GROUP BY 1 ORDER BY 2 DESC"])
    format: Literal["json", "csv"] = Field(default="json", description="csv also when Accept is text/csv")


def _json(body: Any) -> Response:
    return Response(analytics.to_json(body), media_type="application/json")


_QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Columns and rows as JSON, or CSV with format=csv or Accept: text/csv",
          "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}},
    **_ERRORS,
}


@router.post("/query", responses=_QUERY_RESPONSES, summary="Run a read-only SQL query over gold")
async def post_query(request: QueryRequest, pool: PoolDep, settings: SettingsDep,
                     accept: Annotated[str | None, Header()] = None) -> Response:
    result = await analytics.run_query(pool, settings, request.sql)
    if request.format == "csv" or (accept is not None and "text/csv" in accept):
        return Response(analytics.to_csv(result), media_type="text/csv; charset=utf-8")
    return _json(analytics.query_body(result))


@router.get("/dashboard/summary", responses=_ERRORS, summary="Stores, products, orders, revenue, AOV, top lists")
async def dashboard_summary(pool: PoolDep, settings: SettingsDep) -> Response:
    return _json(await analytics.dashboard(pool, settings))


@router.get("/stores/{store_id}", responses=_ERRORS, summary="A store's summary, segment and next-order prediction")
async def store(store_id: Annotated[str, Path(max_length=64, pattern=IDENT)], pool: PoolDep,
                settings: SettingsDep) -> Response:
    return _json(await analytics.store_detail(pool, settings, store_id))


@router.get("/upsell", responses=_ERRORS, summary="Products to suggest for a basket, by lift then confidence")
async def upsell(pool: PoolDep, settings: SettingsDep,
                 store_id: Annotated[str | None, Query(description="Store of the basket", max_length=64,
                                                       pattern=IDENT)] = None,
                 product_id: Annotated[list[Annotated[str, StringConstraints(max_length=64, pattern=IDENT)]] | None,
                                       Query(description="SKUs in the basket (repeat)", max_length=100)] = None,
                 limit: Annotated[int, Query(ge=1, le=50)] = 5) -> Response:
    return _json(await analytics.upsell(pool, settings, store_id=store_id, product_ids=product_id or [], limit=limit))


@router.get("/analytics/trends", responses=_ERRORS, summary="Daily orders and revenue against the period before")
async def trends(pool: PoolDep, settings: SettingsDep,
                 days: Annotated[int, Query(ge=1, le=366, description="Length of each period")] = 28,
                 store_id: Annotated[str | None, Query(description="One store; all stores when absent",
                                                       max_length=64, pattern=IDENT)] = None,
                 ) -> Response:
    return _json(await analytics.trends(pool, settings, days=days, store_id=store_id))
