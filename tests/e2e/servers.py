"""Run a test's server (Prometheus, Alertmanager) as its own process group until it answers ``/-/ready``.

Example::

    with ready_server("prometheus", [binary, "--web.listen-address=127.0.0.1:9090"], work_dir,
                      "http://127.0.0.1:9090"):
        ...  # the server answers; afterwards it is stopped and the tail of its log printed
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from cli.services import stop_group
from tests.conftest import eventually


@contextmanager
def ready_server(name: str, argv: Sequence[str], work_dir: Path, url: str, *,
                 cwd: Path | None = None) -> Iterator[None]:
    """Start ``argv`` logging to ``work_dir/<name>.log``; yield once ``url``/-/ready answers 200."""
    log = work_dir / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
    try:
        eventually(lambda: _ready(name, url, proc), until=bool, timeout=60, what=f"{name} ready")
        yield
    finally:
        stop_group(proc, 30)
        print(f"--- {name} (exit {proc.returncode}) ---\n{log.read_text(errors='replace')[-3000:]}")


def _ready(name: str, url: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, f"{name} exited with {proc.returncode}"
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
