"""POST /v1/transactions: one transaction, answered 202 only after Kafka acknowledged it."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from ingest_api.deps import BodyDep, PublisherDep, SettingsDep
from ingest_api.errors import ErrorResponse
from ingest_api.service import ingest_one, parse_transaction
from observability.metrics import INGEST_LATENCY, INGEST_REQUESTS
from scout.contract import Transaction

router = APIRouter(prefix="/v1", tags=["ingest"])


class AcceptedResponse(BaseModel):
    status: Literal["accepted"] = "accepted"
    event_hash: str
    store_id: str
    transaction_id: str
    partition: int
    offset: int


_ERRORS = {
    413: {"model": ErrorResponse, "description": "Body larger than the configured limit"},
    422: {"model": ErrorResponse, "description": "Invalid transaction: field path and reason in details"},
    503: {"model": ErrorResponse, "description": "Kafka unavailable; retry after Retry-After seconds"},
}


@router.post(
    "/transactions",
    status_code=202,
    response_model=AcceptedResponse,
    responses=_ERRORS,  # type: ignore[arg-type]
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Transaction.model_json_schema()}},
        }
    },
    summary="Ingest one transaction",
)
async def post_transaction(body: BodyDep, publisher: PublisherDep, settings: SettingsDep) -> AcceptedResponse:
    started = time.perf_counter()
    try:
        tx = parse_transaction(body)
    except Exception:
        INGEST_REQUESTS.labels("single", "rejected").inc()
        raise
    accepted = await ingest_one(publisher, tx, source="api", retry_after_s=settings.retry_after_s)
    INGEST_LATENCY.labels("single").observe(time.perf_counter() - started)
    return AcceptedResponse(**accepted.__dict__)
