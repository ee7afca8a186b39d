"""The OpenAPI document: the contract's schemas as components, request examples, and the one error shape."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ingest_api.errors import ErrorResponse
from scout.contract import Transaction
from scout.settings import Settings

_REF = "#/components/schemas/{model}"
_EXAMPLE: dict[str, Any] = Transaction.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index,assignment]  # the dict scout/contract.py sets; pydantic types it as dict|callable
_SECOND = {**_EXAMPLE, "transaction_id": "TXN-20250824-002", "total_amount": "25.00",
           "items": [{"product_name": "Coca-Cola 350ml", "qty": 1, "unit_price": "25.00"}]}

SINGLE_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {
        "schema": {"$ref": _REF.format(model="Transaction")},
        "examples": {"transaction": {"summary": "A basket of one line", "value": _EXAMPLE}},
    }},
}

BATCH_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "array", "minItems": 1, "items": {"$ref": _REF.format(model="Transaction")}},
            "examples": {"array": {"summary": "A JSON array of transactions", "value": [_EXAMPLE, _SECOND]}},
        },
        "application/x-ndjson": {
            "schema": {"type": "string", "description": "One transaction (a JSON object) per line."},
            "examples": {"ndjson": {"summary": "One transaction per line",
                                    "value": "\n".join(json.dumps(t) for t in (_EXAMPLE, _SECOND))}},
        },
    },
}

_DESCRIPTIONS = {
    401: ("Missing, unknown, expired or revoked bearer token", "unauthorized"),
    403: ("The token lacks the scope, or may not post for this store or device",
          "insufficient_scope | store_forbidden | device_mismatch"),
    404: ("No such resource (an unknown upload id)", "not_found"),
    409: ("Idempotency-Key reused with another request, or its first request is still running",
          "idempotency_key_reused | idempotency_key_in_progress"),
    413: ("Body larger than the configured limit, or too many transactions in a batch",
          "payload_too_large | too_many_items"),
    415: ("Batch body neither application/json nor application/x-ndjson", "unsupported_media_type"),
    422: ("Invalid request: every field path and reason in details", "validation_error"),
    429: ("Over the token's rate limit, or too many failed authentications; see Retry-After",
          "rate_limited | too_many_auth_failures"),
    503: ("Kafka (or the token / idempotency store) did not answer in time; nothing was accepted; see Retry-After",
          "kafka_unavailable | auth_unavailable | idempotency_unavailable | uploads_unavailable"),
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented error answers of a route, all in the one error shape."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, codes = _DESCRIPTIONS[status]
        entry: dict[str, Any] = {"model": ErrorResponse, "description": f"{description} (code: {codes})"}
        if status in (409, 429, 503):
            entry["headers"] = _RETRY_AFTER
        responses[status] = entry
    return responses


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Generate the document once, with Transaction and LineItem as components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, summary=app.summary,
                               description=app.description, routes=app.routes)
        contract = Transaction.model_json_schema(ref_template=_REF)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(contract.pop("$defs", {}))
        schemas["Transaction"] = contract
        batch = document["paths"]["/v1/transactions:batch"]["post"]["requestBody"]["content"]["application/json"]
        batch["schema"]["maxItems"] = settings.api_batch_max_items
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
