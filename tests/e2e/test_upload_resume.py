"""An upload whose API process is killed mid-file is taken over by the next API process: it resumes from its
last checkpoint, ends `succeeded` with the same counts as an uninterrupted run, and nothing lands twice."""

from __future__ import annotations

import csv
import gzip
import os
import signal
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.test_upload_sample import SAMPLE, expected_invoices
from tests.e2e.workers import api_process, wait_api_ready, worker_processes
from tests.factories import bearer


def _job(dsn: str, job_id: str) -> dict[str, Any]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        row = conn.execute("SELECT * FROM ops.upload_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def test_an_upload_interrupted_by_a_killed_api_resumes_when_an_api_starts(settings: Settings) -> None:
    dsn = settings.database_dsn()
    auth = bearer(dsn)
    invoices = expected_invoices(SAMPLE)
    # small publish rounds make many checkpoints, so the kill lands mid-file
    with api_process(settings, upload_batch_size="4") as (url, _, children):
        with gzip.open(SAMPLE, "rb") as f:
            created = httpx.post(f"{url}/v1/uploads", content=f.read(), timeout=60,
                                 headers={**auth, "Content-Type": "text/csv"})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        eventually(lambda: _job(dsn, job_id), until=lambda j: j["rows_read"] > 0, timeout=60, interval=0.02,
                   what="the upload to pass its first checkpoint")
        first = children.running[0].proc
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        killed = _job(dsn, job_id)
        assert killed["state"] == "running" and 0 < killed["rows_read"] < 52_516, killed

        children.start("api-restarted", "api")
        wait_api_ready(url)
        with worker_processes(settings):
            done = eventually(lambda: _job(dsn, job_id), until=lambda j: j["state"] != "running", timeout=180,
                              what="the resumed upload to end")
            accepted = sum(n for _, n in invoices.values())
            assert (done["state"], done["resumes"], done["rows_read"], done["rows_accepted"],
                    done["transactions_published"], done["rows_duplicate"]) == (
                "succeeded", 1, 52_516, accepted, len(invoices), 534)
            errors = httpx.get(f"{url}/v1/uploads/{job_id}/errors.csv", headers=auth, timeout=60).text
            rows = list(csv.DictReader(errors.splitlines()))
            assert len(rows) == done["rows_rejected"] + done["rows_duplicate"]
            assert len({r["row"] for r in rows}) == len(rows)  # no row reported twice across the two runs

            def landed() -> tuple[int, int, int]:
                with psycopg.connect(dsn) as conn:
                    row = conn.execute("SELECT (SELECT count(*) FROM bronze.transactions), (SELECT count(*) FROM "
                                       "silver.transactions) + (SELECT count(*) FROM silver.quarantine), "
                                       "(SELECT count(DISTINCT transaction_id) FROM bronze.transactions)"
                                       ).fetchone()
                assert row is not None
                return row[0], row[1], row[2]

            final = eventually(landed, until=lambda c: c[1] == len(invoices), timeout=180,
                               what="every invoice in silver or quarantine")
            assert final == (len(invoices), len(invoices), len(invoices))
    assert not (settings.data_dir / "uploads" / f"{job_id}.csv").exists()
