"""Run one upload job: map the spooled CSV, publish each invoice with source=bulk, keep counts and errors in ops.

Example::

    job = UploadJob(settings, publisher, pool, job_id=uuid4(), mapping=Mapping.preset("online_retail_ii"))
    await job.run(path)          # state: succeeded | stopped (circuit breaker) | failed (file or Kafka)

A transaction counts as published only after Kafka acknowledged it; ``transactions_published`` and
``rows_accepted`` are exact when a job stops. A re-run publishes the same event hashes: bronze keeps one.
A job given the counts of its last checkpoint (``job.counts``) resumes: it skips the invoices those counts
cover (the mapping yields them in the same order every time) and goes on from there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Final
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from ingest_api.publisher import Ack, Publisher
from observability.metrics import UPLOAD_ROWS, UPLOADS, UPLOADS_ACTIVE
from scout.contract import Envelope
from scout.db import q
from scout.invoice_mapping import Group, Mapping, RowError, UploadFormatError, map_csv
from scout.settings import Settings

log = logging.getLogger(__name__)

# Well-formed rows left out by a documented rule: rejected and listed, but not errors for the breaker.
EXCLUDED: Final = frozenset({"cancellation", "non_product_code", "too_many_lines"})


@dataclass
class Counts:
    read: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    invalid: int = 0
    published: int = 0
    last_invoice: str | None = None

    def params(self, job_id: UUID) -> dict[str, object]:
        return {"id": job_id, "read": self.read, "accepted": self.accepted, "duplicate": self.duplicate,
                "rejected": self.rejected, "published": self.published, "last_invoice": self.last_invoice}


def _after(groups: Iterator[Group], rows: int) -> Iterator[Group]:
    """The groups after those covering the first ``rows`` rows read (a checkpoint always ends on a group)."""
    skipped = 0
    for group in groups:
        if skipped >= rows:
            yield group
        else:
            skipped += group.rows
            if skipped > rows:
                raise UploadFormatError(f"the file changed since row {rows} was recorded; upload it again")


Prepared = list[tuple[Group, Envelope | None]]


def _next_batch(groups: Iterator[Group], size: int) -> Prepared:
    """The next ``size`` invoices with their envelopes, built in the parsing thread: the event loop only
    publishes and records (it shares the interpreter with the parse, so its share of the work stays small)."""
    return [(g, Envelope.wrap(g.transaction, source="bulk") if g.transaction is not None else None)
            for g in islice(groups, size)]


class UploadJob:
    def __init__(self, settings: Settings, publisher: Publisher, pool: AsyncConnectionPool, *,
                 job_id: UUID, mapping: Mapping) -> None:
        self.settings, self.publisher, self.pool = settings, publisher, pool
        self.job_id, self.mapping = job_id, mapping
        self.counts = Counts()

    async def run(self, path: Path) -> str:
        """Publishes the file's transactions; returns the final state (also written to the job row)."""
        UPLOADS_ACTIVE.inc()
        try:
            try:
                with path.open(encoding="utf-8", newline="") as stream:
                    groups = map_csv(stream, self.mapping, ts_range=self.settings.ts_range(datetime.now(UTC)))
                    state, reason = await self._publish_all(_after(groups, self.counts.read))
            except UploadFormatError as exc:
                state, reason = "failed", f"upload_id={self.job_id}: {exc}"
            except Exception as exc:  # the job row must say why it ended; the error is logged with its trace
                log.exception("upload %s failed", self.job_id)
                state, reason = "failed", f"upload_id={self.job_id}: internal error {type(exc).__name__}"
            await self._finish(state, reason)
        finally:
            UPLOADS_ACTIVE.dec()
        UPLOADS.labels(state).inc()
        return state

    async def _publish_all(self, groups: Iterator[Group]) -> tuple[str, str | None]:
        """Parses the next batch in a thread while the current one is published (never two parses at once)."""
        size = self.settings.upload_batch_size
        ahead = asyncio.ensure_future(asyncio.to_thread(_next_batch, groups, size))
        try:
            while True:
                batch = await ahead
                if not batch:
                    return "succeeded", None
                ahead = asyncio.ensure_future(asyncio.to_thread(_next_batch, groups, size))
                outcome = await self._one_batch(batch)
                if outcome is not None:
                    return outcome
        finally:
            await asyncio.gather(ahead, return_exceptions=True)  # the file stays open until the parse ends

    async def _one_batch(self, batch: Prepared) -> tuple[str, str | None] | None:
        before = (self.counts.accepted, self.counts.duplicate, self.counts.rejected)
        tripped = self._count([g for g, _ in batch])
        keep = batch if tripped is None else batch[:tripped[0]]
        unacked = await self._publish([(g, e) for g, e in keep if e is not None])
        await self._record([g for g, _ in keep])
        after = (self.counts.accepted, self.counts.duplicate, self.counts.rejected)
        for outcome, was, now in zip(("accepted", "duplicate", "rejected"), before, after, strict=True):
            UPLOAD_ROWS.labels(outcome).inc(now - was)
        if unacked:
            return "failed", (f"kafka_unavailable: {unacked} transactions not acknowledged; published "
                              f"{self.counts.published} before stopping; re-run the upload (no duplicates)")
        if tripped is not None:
            return "stopped", tripped[1]
        return None

    def _count(self, batch: list[Group]) -> tuple[int, str] | None:
        """Adds the batch's row counts; the index of the group that trips the breaker, and why."""
        limit, floor = self.settings.upload_error_rate_max, self.settings.upload_breaker_min_rows
        for i, group in enumerate(batch):
            c = self.counts
            c.read += group.rows
            c.rejected += len(group.errors)
            c.duplicate += len(group.duplicates)
            c.invalid += sum(e.reason not in EXCLUDED for e in group.errors)
            if c.read >= floor and c.invalid > limit * c.read:
                last = max((e.row for e in group.errors), default=0)
                return i + 1, (f"circuit_breaker: {c.invalid} invalid of {c.read} rows read "
                               f"({c.invalid / c.read:.1%} > {limit:.0%}) at row {last}")
        return None

    async def _publish(self, prepared: list[tuple[Group, Envelope]]) -> int:
        results = await self.publisher.publish_many([e for _, e in prepared])
        unacked = 0
        for (group, _), result in zip(prepared, results, strict=True):
            if isinstance(result, Ack):
                self.counts.published += 1
                self.counts.accepted += group.accepted
                self.counts.last_invoice = group.invoice
            else:
                unacked += 1
                group.errors.append(RowError(0, "Invoice", "kafka_unavailable", group.invoice))
        return unacked

    async def _record(self, groups: list[Group]) -> None:
        rows = [{"job_id": self.job_id, "row": e.row, "column": e.column, "reason": e.reason, "value": e.value[:200]}
                for g in groups for e in (*g.errors, *g.duplicates)]
        async with self.pool.connection() as conn, conn.transaction():
            if rows:
                async with conn.cursor() as cur:
                    await cur.executemany(q("upload_error_insert"), rows)
            await conn.execute(q("upload_job_progress"), self.counts.params(self.job_id))

    async def _finish(self, state: str, reason: str | None) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(q("upload_job_finish"), {**self.counts.params(self.job_id), "state": state,
                                                        "reason": reason})
