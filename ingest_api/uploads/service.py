"""Upload jobs for the API: spool the streamed body to disk, start the job, read its row and its errors.

Example::

    uploads = Uploads(settings, publisher, pool)
    await uploads.resume_orphans()   # at start: take over jobs whose process died
    job_id = await uploads.start(request.stream(), filename="x.csv", owner="token:1", mapping=mapping)
    await uploads.get(job_id)        # the job row as a dict, or None

The process running a job holds a session advisory lock on it (its own connection). If that process dies,
PostgreSQL releases the lock; the next API process to start finds the job still ``running``, takes the lock
and resumes it from its last recorded checkpoint with the spooled file (kept under ``data_dir/uploads``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ingest_api.errors import ApiError
from ingest_api.publisher import Publisher
from ingest_api.uploads.job import EXCLUDED, Counts, UploadJob
from scout.csv_cells import csv_writer
from scout.db import q
from scout.invoice_mapping import Mapping
from scout.settings import Settings

log = logging.getLogger(__name__)

DONE_STATES = frozenset({"succeeded", "failed", "stopped"})


class Uploads:
    def __init__(self, settings: Settings, publisher: Publisher, pool: AsyncConnectionPool) -> None:
        self.settings, self.publisher, self.pool = settings, publisher, pool
        self.tasks: set[asyncio.Task[str]] = set()

    @property
    def spool_dir(self) -> Path:
        return self.settings.data_dir / "uploads"

    async def start(self, body: AsyncIterator[bytes], *, filename: str, owner: str, mapping: Mapping) -> UUID:
        """Writes the body to the spool directory (never all in memory), then runs the job in the background."""
        job_id = uuid4()
        path = await self._spool(body, job_id)
        lock = await self._lock(job_id)
        try:
            assert lock is not None  # a fresh id: nobody else holds it
            async with self.pool.connection() as conn:
                await conn.execute(q("upload_job_create"), {
                    "id": job_id, "filename": filename[:200], "owner": owner,
                    "mapping": Jsonb(dataclasses.asdict(mapping)), "spool_path": str(path)})
        except BaseException:
            path.unlink(missing_ok=True)
            if lock is not None:
                await lock.close()
            raise
        self._launch(UploadJob(self.settings, self.publisher, self.pool, job_id=job_id, mapping=mapping), path, lock)
        return job_id

    async def resume_orphans(self) -> list[UUID]:
        """Takes over every ``running`` job whose process is gone (its lock is free); returns their ids."""
        async with self.pool.connection() as conn:
            running = [r[0] for r in await (await conn.execute(q("upload_jobs_running"))).fetchall()]
        resumed = []
        for job_id in running:
            lock = await self._lock(job_id)
            if lock is None:
                continue  # its process is alive and working on it
            try:
                job = await self._claim(job_id)
            except BaseException:
                await lock.close()
                raise
            if job is None:
                await lock.close()
                continue
            log.warning("resuming upload %s after row %s", job_id, job.counts.read)
            self._launch(job, self.spool_dir / f"{job_id}.csv", lock)
            resumed.append(job_id)
        return resumed

    async def _claim(self, job_id: UUID) -> UploadJob | None:
        """The job to resume from its checkpoint; None if it ended meanwhile or cannot be resumed (then failed)."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(q("upload_job_claim"), {"id": job_id})
            row = await cur.fetchone()
            if row is None:
                return None
            await cur.execute(q("upload_invalid_rows"), {"id": job_id, "excluded": sorted(EXCLUDED)})
            invalid = await cur.fetchone()
        counts = _counts(row)
        counts.invalid = invalid["count"] if invalid else 0
        if row["mapping"] is None or not (self.spool_dir / f"{job_id}.csv").exists():
            async with self.pool.connection() as conn:
                await conn.execute(q("upload_job_finish"), {
                    **counts.params(job_id), "state": "failed",
                    "reason": f"upload_id={job_id}: interrupted and its spooled file is gone; upload the file "
                              "again (what was published is not duplicated)"})
            return None
        job = UploadJob(self.settings, self.publisher, self.pool, job_id=job_id,
                        mapping=Mapping.from_dict(row["mapping"]))
        job.counts = counts
        return job

    async def _lock(self, job_id: UUID) -> psycopg.AsyncConnection[Any] | None:
        """A connection holding the job's session lock, or None when another live process holds it."""
        conn = await psycopg.AsyncConnection.connect(self.settings.database_dsn(), autocommit=True)
        try:
            row = await (await conn.execute(q("upload_lock"), {"id": job_id})).fetchone()
        except BaseException:
            await conn.close()
            raise
        if row is None or not row[0]:
            await conn.close()
            return None
        return conn

    def _launch(self, job: UploadJob, path: Path, lock: psycopg.AsyncConnection[Any]) -> None:
        task = asyncio.create_task(self._run(job, path, lock), name=f"upload-{job.job_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, job: UploadJob, path: Path, lock: psycopg.AsyncConnection[Any]) -> str:
        try:
            state = await job.run(path)
        finally:
            await lock.close()  # cancelled (shutdown): the job stays running and the next start resumes it
        path.unlink(missing_ok=True)
        return state

    async def _spool(self, body: AsyncIterator[bytes], job_id: UUID) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path, size = self.spool_dir / f"{job_id}.csv", 0
        try:
            with path.open("wb") as out:
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
        """The rejected rows as CSV lines: row, column, reason, value (a value that could start a spreadsheet
        formula is quoted, ``scout.csv_cells``)."""
        yield "row,column,reason,value\r\n"
        async with self.pool.connection() as conn, conn.cursor(name=f"errors_{job_id.hex}") as cur:
            await cur.execute(q("upload_errors_list"), {"id": job_id})
            async for record in cur:
                buf = io.StringIO()
                csv_writer(buf).writerow(record)
                yield buf.getvalue()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _counts(row: dict[str, Any]) -> Counts:
    return Counts(read=row["rows_read"], accepted=row["rows_accepted"], duplicate=row["rows_duplicate"],
                  rejected=row["rows_rejected"], published=row["transactions_published"],
                  last_invoice=row["last_published_invoice"])
