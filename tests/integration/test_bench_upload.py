"""`scout bench upload` runs its real job path (job record, parse, publish) on a small generated file, so the
benchmark cannot drift from the upload service it measures."""

from __future__ import annotations

from pathlib import Path

from cli.bench.upload import bench_upload


def test_the_upload_benchmark_runs_the_job_end_to_end(kafka_bootstrap: str, database: str, tmp_path: Path) -> None:
    result = bench_upload(kafka_bootstrap, database, tmp_path, lines=2_000, say=lambda _: None)
    job = result["job"]
    assert job["state"] == "succeeded", job
    assert job["rows_read"] == 2_000 == job["rows_accepted"] + job["rows_rejected"]
    assert 0 < job["transactions_published"] <= result["invoices"]
    assert result["upload_rows_s"] > 0 and result["raw_kafka_produce_msg_s"] > 0
