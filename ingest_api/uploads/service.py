"""Upload jobs for the API: spool the streamed body to disk, start the job, read its row and its errors.

Example::

    uploads = Uploads(settings, publisher, pool)
    job_id = await uploads.start(request.stream(), filename="x.csv", owner="token:1", mapping=mapping)
    await uploads.get(job_id)        # the job row as a dict, or None
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ingest_api.errors import ApiError
from ingest_api.publisher import Publisher
from ingest_api.uploads.job import UploadJob
from ingest_api.uploads.mapping import Mapping
from scout.db import q
from scout.settings import Settings

DONE_STATES = frozenset({"succeeded", "failed", "stopped"})


class Uploads:
    def __init__(self, settings: Settings, publisher: Publisher, pool: AsyncConnectionPool) -> None:
        self.settings, self.publisher, self.pool = settings, publisher, pool
        self.tasks: set[asyncio.Task[str]] = set()

    async def start(self, body: AsyncIterator[bytes], *, filename: str, owner: str, mapping: Mapping) -> UUID:
        """Writes the body to a temporary file (never all in memory), then runs the job in the background."""
        path = await self._spool(body)
        job_id = uuid4()
        async with self.pool.connection() as conn:
            await conn.execute(q("upload_job_create"), {"id": job_id, "filename": filename[:200], "owner": owner})
        job = UploadJob(self.settings, self.publisher, self.pool, job_id=job_id, mapping=mapping)
        task = asyncio.create_task(self._run(job, path), name=f"upload-{job_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return job_id

    async def _run(self, job: UploadJob, path: Path) -> str:
        try:
            return await job.run(path)
        finally:
            path.unlink(missing_ok=True)

    async def _spool(self, body: AsyncIterator[bytes]) -> Path:
        fd, name = tempfile.mkstemp(prefix="scout-upload-", suffix=".csv")
        path, size = Path(name), 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in body:
                    size += len(chunk)
                    if size > self.settings.upload_max_bytes:
                        raise ApiError(413, "payload_too_large",
                                       f"upload exceeds the limit of {self.settings.upload_max_bytes} bytes")
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise ApiError(422, "validation_error", "empty upload: send the CSV as the request body",
                           details=[{"field": "body", "reason": "empty"}])
        return path

    async def get(self, job_id: UUID) -> dict[str, Any] | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q("upload_job_get"), {"id": job_id})
            return await cur.fetchone()

    async def errors_csv(self, job_id: UUID) -> AsyncIterator[str]:
        """The rejected rows as CSV lines: row, column, reason, value."""
        yield "row,column,reason,value\r\n"
        async with self.pool.connection() as conn, conn.cursor(name=f"errors_{job_id.hex}") as cur:
            await cur.execute(q("upload_errors_list"), {"id": job_id})
            async for record in cur:
                buf = io.StringIO()
                csv.writer(buf).writerow(record)
                yield buf.getvalue()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
