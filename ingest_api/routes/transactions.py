"""POST /v1/transactions (one) and POST /v1/transactions:batch (many): 2xx only after Kafka acknowledged.

The hot path keeps FastAPI dependencies to the caller (security, in the OpenAPI document) and the
Idempotency-Key header: FastAPI resolves every dependency anew on each request, so the body, the ingest
stage and the idempotency store are taken directly. A body is read (and refused with 422) before its
Idempotency-Key is looked at; the key then covers the transactions' canonical content, not the bytes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ingest_api.batch import ingest_batch
from ingest_api.batch import read_batch as read_items
from ingest_api.deps import IdempotencyKey, IngestCaller, body_reader
from ingest_api.idempotency import answer_once, request_fingerprint
from ingest_api.openapi import BATCH_BODY, SINGLE_BODY, error_responses
from ingest_api.schemas import AcceptedResponse, BatchResponse
from ingest_api.service import Ingest

router = APIRouter(prefix="/v1", tags=["ingest"])
read_single = body_reader("api_max_body_bytes", "single")
read_batch = body_reader("api_batch_max_bytes", "batch")


@router.post(
    "/transactions",
    status_code=202,
    response_model=AcceptedResponse,
    responses=error_responses(401, 403, 409, 413, 422, 429, 503),
    openapi_extra={"requestBody": SINGLE_BODY},
    summary="Ingest one transaction",
    description="Validated, hashed (SHA-256 over the canonical form) and produced to Kafka with acks=all; "
                "202 only after the acknowledgement. A resend gets the same `event_hash` and lands once.",
)
async def post_transaction(principal: IngestCaller, request: Request,
                           idempotency_key: IdempotencyKey = None) -> Response:
    ingest: Ingest = request.app.state.ingest
    tx = ingest.read(await read_single(request))
    return await answer_once(
        request.app.state.idempotency, owner=principal.owner, key=idempotency_key,
        fingerprint=request_fingerprint("POST", request.url.path, [tx.canonical_bytes])
        if idempotency_key is not None else "",
        retry_after_s=ingest.settings.retry_after_s,
        produce=lambda: ingest.one(principal, tx),
    )


@router.post(
    "/transactions:batch",
    status_code=200,
    response_model=BatchResponse,
    responses=error_responses(401, 403, 409, 413, 415, 422, 429, 503),
    openapi_extra={"requestBody": BATCH_BODY},
    summary="Ingest a batch of transactions (JSON array or NDJSON)",
    description="Each transaction is judged on its own: `accepted` (Kafka acknowledged it), `duplicate` "
                "(its event hash was produced recently) or `rejected` with a reason. 503 only when Kafka "
                "acknowledged none; items rejected with `kafka_unavailable` can be resent as they are.",
)
async def post_batch(principal: IngestCaller, request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    ingest: Ingest = request.app.state.ingest
    items = read_items(ingest, await read_batch(request), request.headers.get("content-type"))
    return await answer_once(
        request.app.state.idempotency, owner=principal.owner, key=idempotency_key,
        fingerprint=request_fingerprint("POST", request.url.path, [item.content for item in items])
        if idempotency_key is not None else "",
        retry_after_s=ingest.settings.retry_after_s,
        produce=lambda: ingest_batch(ingest, principal, items),
    )
