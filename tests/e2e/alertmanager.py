"""A real Alertmanager (Debian's prometheus-alertmanager, fetched by `make promtool`) for the tests: 127.0.0.1,
free ports, a temporary data directory, and Scout's own observability/alertmanager/alertmanager.yml with two
changes only: its webhook receivers post to the test's receiver, and the grouping waits are one second instead of
the deployment's 30 s and 5 min (the route, grouping labels, receivers and send_resolved are the file's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from cli.services import free_port
from tests.e2e.servers import ready_server

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "observability" / "alertmanager" / "alertmanager.yml"
CACHE = ROOT / ".cache" / "promtool"
# Debian's binary reading its templates under its working directory (scripts/fetch-promtool.sh), run from CACHE.
BINARY = CACHE / "usr" / "bin" / "prometheus-alertmanager-here"


def config(receiver_url: str) -> dict[str, Any]:
    deployed = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    for receiver in deployed["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = receiver_url
    deployed["route"].update({"group_wait": "1s", "group_interval": "1s"})
    return dict(deployed)


@contextmanager
def alertmanager_server(receiver_url: str, work_dir: Path) -> Iterator[str]:
    """Alertmanager posting to ``receiver_url``; yields its host:port (what Prometheus sends alerts to)."""
    assert BINARY.exists(), "alertmanager not found: `make promtool` fetches Debian's package into .cache/promtool"
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_file = work_dir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config(receiver_url)), encoding="utf-8")
    address = f"127.0.0.1:{port}"
    argv = [str(BINARY), f"--config.file={config_file}", f"--storage.path={work_dir / 'data'}",
            f"--web.listen-address={address}", "--cluster.listen-address="]  # one instance: no cluster
    with ready_server("alertmanager", argv, work_dir, f"http://{address}", cwd=CACHE):
        yield address
