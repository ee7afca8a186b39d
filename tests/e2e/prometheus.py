"""A real Prometheus server (Debian's binary, fetched by `make promtool`) for the tests: 127.0.0.1, a free port,
a temporary data directory, Scout's own alert rules and scrape jobs pointed at the test's processes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from cli.services import free_port
from tests.e2e.servers import ready_server

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "observability" / "prometheus"


def prometheus_binary() -> str:
    cached = ROOT / ".cache" / "promtool" / "usr" / "bin" / "prometheus"
    found = str(cached) if cached.exists() else shutil.which("prometheus")
    assert found, "prometheus not found: `make promtool` fetches Debian's package into .cache/promtool"
    return found


def config(targets: Mapping[str, str], *, interval: str = "1s", alertmanager: str | None = None) -> dict[str, Any]:
    """The deployment's prometheus.yml with every Scout job scraping ``targets`` (job name -> host:port)
    instead of the compose hosts: same job names, metrics paths, labels and rule files; alerts sent to the
    ``alertmanager`` host:port instead of the compose one when given."""
    deployed = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = []
    for job in deployed["scrape_configs"]:
        name = job["job_name"]
        if name not in targets:
            continue
        labels: dict[str, str] = {}
        for static in job.get("static_configs", []):
            labels.update(static.get("labels", {}))
        for relabel in job.get("relabel_configs", []):
            if "replacement" in relabel and "source_labels" not in relabel:
                labels[relabel["target_label"]] = relabel["replacement"]
        scrape = {k: v for k, v in job.items() if k in {"job_name", "metrics_path", "scheme"}}
        scrape["static_configs"] = [{"targets": [targets[name]], "labels": labels}]
        jobs.append(scrape)
    rule_files = [str(path) for pattern in deployed["rule_files"] for path in sorted(PROMETHEUS_DIR.glob(pattern))]
    found: dict[str, Any] = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": rule_files, "scrape_configs": jobs}
    if alertmanager is not None:
        (deployed_target,) = [t for am in deployed["alerting"]["alertmanagers"] for c in am["static_configs"]
                              for t in c["targets"]]
        assert deployed_target, "prometheus.yml sends no alerts"
        found["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return found


@dataclass(frozen=True)
class Prometheus:
    url: str

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>: the ``data`` of a successful answer; an error fails the test with its message."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]


@contextmanager
def prometheus_server(targets: Mapping[str, str], work_dir: Path, *,
                      alertmanager: str | None = None) -> Iterator[Prometheus]:
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_file = work_dir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config({**targets, "prometheus": f"127.0.0.1:{port}"},
                                                 alertmanager=alertmanager)), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    argv = [prometheus_binary(), f"--config.file={config_file}", f"--storage.tsdb.path={work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"]
    with ready_server("prometheus", argv, work_dir, url):
        yield Prometheus(url)
