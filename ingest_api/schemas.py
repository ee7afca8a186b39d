"""Response bodies of the ingest routes, with the examples the OpenAPI docs show."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest_api.errors import ErrorDetail

_HASH = "9c1185a5c5e9fc54612808977ee8f548b2258d31a3c3b1e6c0ef0b1c6b9fdb4f"


class AcceptedResponse(BaseModel):
    """202: Kafka acknowledged the transaction (acks=all); it will land once."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "accepted", "duplicate": False, "event_hash": _HASH, "store_id": "STORE-001",
         "transaction_id": "TXN-20250824-001", "partition": 2, "offset": 1041},
    ]})

    status: Literal["accepted", "duplicate"] = Field(
        description="`duplicate`: the API already produced this event hash recently; nothing new was produced.")
    duplicate: bool = Field(description="True when the event hash was already known (a resend).")
    event_hash: str = Field(description="SHA-256 of the canonical transaction: the same for every resend.")
    store_id: str
    transaction_id: str
    partition: int = Field(description="Kafka partition of the (first) acknowledged write.")
    offset: int = Field(description="Kafka offset of the (first) acknowledged write.")


class BatchItemResult(BaseModel):
    """The outcome of one transaction of a batch, in the order they were sent."""

    index: int = Field(description="Position in the batch from 0: the array index, or the n-th non-blank NDJSON line.")
    status: Literal["accepted", "duplicate", "rejected"]
    event_hash: str | None = None
    store_id: str | None = None
    transaction_id: str | None = None
    partition: int | None = None
    offset: int | None = None
    reason: str | None = Field(
        default=None,
        description="Why it was rejected: validation_error, store_forbidden, device_mismatch or kafka_unavailable "
                    "(only kafka_unavailable is worth resending as is).")
    message: str | None = None
    details: list[ErrorDetail] = Field(default_factory=list)


class BatchResponse(BaseModel):
    """200: every transaction's outcome; one bad transaction never sinks the others."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "accepted": 1, "duplicate": 1, "rejected": 1,
        "results": [
            {"index": 0, "status": "accepted", "event_hash": _HASH, "store_id": "STORE-001",
             "transaction_id": "TXN-1", "partition": 0, "offset": 17, "details": []},
            {"index": 1, "status": "duplicate", "event_hash": _HASH, "store_id": "STORE-001",
             "transaction_id": "TXN-1", "partition": 0, "offset": 17, "details": []},
            {"index": 2, "status": "rejected", "reason": "validation_error",
             "message": "items.0.qty: Input should be a valid integer",
             "details": [{"field": "items.0.qty", "reason": "Input should be a valid integer"}]},
        ],
    }]})

    accepted: int
    duplicate: int
    rejected: int
    results: list[BatchItemResult]


class UploadJob(BaseModel):
    """An upload job (202 when it starts, 200 when read): its state, why it ended, and its counts."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "0b6f8f8e-3c57-4b7e-9a53-2f0f0d3f0c11", "filename": "online_retail_II.csv", "state": "succeeded",
        "reason": None, "resumes": 0, "rows_read": 1000, "rows_accepted": 990, "rows_duplicate": 4,
        "rows_rejected": 6, "transactions_published": 52, "last_published_invoice": "489485",
        "created_at": "2026-01-05T08:00:00Z", "updated_at": "2026-01-05T08:00:03Z",
        "finished_at": "2026-01-05T08:00:03Z"}]})

    id: str = Field(description="The job id (a UUID); `/v1/uploads/{id}`, `/events` and `/errors.csv` follow it.")
    filename: str
    state: Literal["running", "succeeded", "stopped", "failed"] = Field(
        description="`stopped`: the circuit breaker tripped (see `reason`); `failed`: the job could not go on.")
    reason: str | None = Field(description="Why the job stopped or failed; null while running or when it succeeded.")
    resumes: int = Field(description="How often another API process resumed it after the one running it died.")
    rows_read: int = Field(description="Lines read from the file (the header not counted).")
    rows_accepted: int = Field(description="Lines published as part of a transaction.")
    rows_duplicate: int = Field(description="Lines repeating one already read; listed in `errors.csv`.")
    rows_rejected: int = Field(description="Invalid lines; listed with the column and reason in `errors.csv`.")
    transactions_published: int = Field(description="Invoices published to Kafka (acknowledged, acks=all).")
    last_published_invoice: str | None = Field(description="The last invoice acknowledged: where a resume goes on.")
    created_at: str = Field(description="ISO 8601 with time zone.")
    updated_at: str
    finished_at: str | None
