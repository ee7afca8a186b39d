"""``scout upload FILE``: stream a CSV (or .csv.gz) to POST /v1/uploads and follow the job with a progress bar."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

CHUNK = 1 << 20
POLL_S = 0.5


def mapping_param(mapping: str) -> str:
    """A preset name as is; a path to a JSON mapping file as its (compact) JSON text."""
    path = Path(mapping)
    if path.suffix == ".json" or path.is_file():
        return json.dumps(json.loads(path.read_text(encoding="utf-8")), separators=(",", ":"))
    return mapping


def _chunks(raw: BinaryIO, progress: Progress, task: Any) -> Iterator[bytes]:
    """The file's bytes (decompressed when gzip); progress counts bytes of the file on disk."""
    stream: gzip.GzipFile | BinaryIO = gzip.GzipFile(fileobj=raw) if raw.name.endswith(".gz") else raw
    while chunk := stream.read(CHUNK):
        progress.update(task, completed=raw.tell())
        yield chunk


def upload(path: Path, *, url: str, token: str | None, mapping: str, console: Console) -> dict[str, Any]:
    """Sends the file, then polls the job until it is done; returns the final job record."""
    headers = {"Content-Type": "text/csv"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    params = {"mapping": mapping_param(mapping), "filename": path.name}
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client, \
            Progress(*columns, console=console, transient=False) as progress:
        sending = progress.add_task(f"sending {path.name}", total=path.stat().st_size)
        with path.open("rb") as raw:
            response = client.post("/v1/uploads", params=params, content=_chunks(raw, progress, sending))
        if response.status_code != 202:
            raise UploadRefused(response.status_code, response.text)
        progress.update(sending, completed=path.stat().st_size)
        job: dict[str, Any] = response.json()
        rows = progress.add_task("publishing: rows read", total=None)
        while job["state"] == "running":
            time.sleep(POLL_S)
            job = client.get(f"/v1/uploads/{job['id']}").raise_for_status().json()
            progress.update(rows, completed=job["rows_read"],
                            description=f"publishing: {job['transactions_published']} transactions, rows read")
        progress.update(rows, total=job["rows_read"], completed=job["rows_read"])
    return job


class UploadRefused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"the API refused the upload ({status}): {body}")
        self.status = status
