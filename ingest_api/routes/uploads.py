"""Bulk CSV upload routes: start a job, read it, stream its progress (SSE), download its rejected rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from ingest_api.auth import Principal, require_scope
from ingest_api.errors import ApiError
from ingest_api.openapi import error_responses
from ingest_api.schemas import UploadJob
from ingest_api.uploads.service import DONE_STATES, Uploads
from scout.invoice_mapping import PRESETS, Mapping, UploadFormatError

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
Uploader = Annotated[Principal, Depends(require_scope("ingest"))]
SSE_POLL_S = 0.5
MAPPING_HELP = f"A preset ({', '.join(PRESETS)}) or a JSON mapping: {{\"columns\": {{...}}, \"store_id\": ...}}"
SSE_HEARTBEAT_S = 15.0


async def get_uploads(request: Request) -> Uploads:
    uploads: Uploads | None = request.app.state.uploads
    if uploads is None:
        raise ApiError(503, "uploads_unavailable", "uploads need a database (SCOUT_DATABASE_URL)")
    return uploads


UploadsDep = Annotated[Uploads, Depends(get_uploads)]


def _jsonable(job: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(job))


async def _job(uploads: Uploads, job_id: UUID) -> dict[str, Any]:
    job = await uploads.get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no upload upload_id={job_id}")
    return _jsonable(job)


@router.post("", status_code=202, response_model=UploadJob, responses=error_responses(401, 403, 413, 422, 429, 503),
             summary="Upload a CSV of invoice lines (raw text/csv body or a multipart `file`, streamed to disk)",
             description="Answers 202 with the job once the file is stored; the job publishes one transaction per "
                         "invoice (source=bulk) and keeps counts; follow it at `/v1/uploads/{id}` or `/events`.")
async def post_upload(principal: Uploader, request: Request, uploads: UploadsDep,
                      mapping: Annotated[str, Query(max_length=4000, description=MAPPING_HELP)] = "online_retail_ii",
                      filename: Annotated[str, Query(max_length=200)] = "") -> JSONResponse:
    try:
        preset = Mapping.from_dict(orjson.loads(mapping)) if mapping.startswith("{") else Mapping.preset(mapping)
    except (UploadFormatError, ValueError, TypeError, KeyError) as exc:
        raise ApiError(422, "validation_error", str(exc), details=[{"field": "mapping", "reason": str(exc)}]) from None
    body, filename = await _body(request, filename)
    job_id = await uploads.start(body, filename=filename, owner=principal.owner, mapping=preset)
    return JSONResponse(await _job(uploads, job_id), status_code=202,
                        headers={"Location": f"/v1/uploads/{job_id}"})


async def _body(request: Request, filename: str) -> tuple[AsyncIterator[bytes], str]:
    """The raw body, or the `file` part of a multipart form (which Starlette spools to disk past 1 MB)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return request.stream(), filename
    form = await request.form(max_files=1, max_fields=10)
    part = form.get("file")
    if not isinstance(part, UploadFile):
        raise ApiError(422, "validation_error", "multipart upload without a `file` part",
                       details=[{"field": "file", "reason": "missing"}])

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await part.read(1 << 20):
            yield chunk

    return chunks(), filename or part.filename or ""


@router.get("/{job_id}", response_model=UploadJob, responses=error_responses(401, 403, 404, 422, 429, 503),
            summary="An upload job: state, reason and counts")
async def get_upload(principal: Uploader, job_id: UUID, uploads: UploadsDep) -> JSONResponse:
    return JSONResponse(await _job(uploads, job_id))


@router.get("/{job_id}/errors.csv", responses=error_responses(401, 403, 404, 422, 429, 503),
            summary="Rejected and duplicate rows of an upload: row, column, reason, value")
async def get_upload_errors(principal: Uploader, job_id: UUID, uploads: UploadsDep) -> StreamingResponse:
    await _job(uploads, job_id)
    return StreamingResponse(uploads.errors_csv(job_id), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="upload-{job_id}-errors.csv"'})


@router.get("/{job_id}/events", responses=error_responses(401, 403, 404, 422, 429, 503),
            summary="Server-Sent Events: `progress` while the job runs, then one `done` event")
async def get_upload_events(principal: Uploader, job_id: UUID, uploads: UploadsDep) -> StreamingResponse:
    await _job(uploads, job_id)
    return StreamingResponse(_events(uploads, job_id), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(uploads: Uploads, job_id: UUID) -> AsyncIterator[bytes]:
    """Sends the latest job row whenever it changed; a slow client simply skips intermediate states."""
    last: dict[str, Any] | None = None
    quiet = 0.0
    while True:
        job = await _job(uploads, job_id)
        done = job["state"] in DONE_STATES
        if job != last or done:
            yield b"event: " + (b"done" if done else b"progress") + b"\ndata: " + orjson.dumps(job) + b"\n\n"
            last, quiet = job, 0.0
        elif quiet >= SSE_HEARTBEAT_S:
            yield b": keep-alive\n\n"
            quiet = 0.0
        if done:
            return
        await asyncio.sleep(SSE_POLL_S)
        quiet += SSE_POLL_S
