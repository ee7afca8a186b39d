"""What an operator reads: `scout jobs run --help` names the jobs; the OpenAPI document describes uploads."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from cli.main import app
from ingest_api.app import create_app
from jobs.names import JOB_NAMES
from jobs.registry import JOBS
from scout.settings import Settings


def test_jobs_run_help_lists_every_job() -> None:
    assert tuple(JOBS) == JOB_NAMES
    result = CliRunner().invoke(app, ["jobs", "run", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in JOBS:
        assert name in result.output


def _schema(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    content = document["paths"][path][method]["responses"][status]["content"]["application/json"]
    ref = content["schema"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]


def test_upload_responses_have_a_schema_in_the_openapi_document() -> None:
    document = create_app(Settings()).openapi()
    for path, method, status in (("/v1/uploads", "post", "202"), ("/v1/uploads/{job_id}", "get", "200")):
        schema = _schema(document, path, method, status)
        assert {"id", "state", "reason", "rows_read", "rows_accepted", "rows_rejected",
                "transactions_published"} <= set(schema["properties"]), (path, schema)
        assert schema["properties"]["state"]["enum"] == ["running", "succeeded", "stopped", "failed"]
