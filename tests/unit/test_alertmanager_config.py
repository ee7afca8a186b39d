"""Alertmanager's configuration (observability/alertmanager): valid for Debian's amtool, every alert reaches the
on-call receiver firing and resolved, Prometheus sends to it and docker-compose runs it with this file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "observability" / "alertmanager" / "alertmanager.yml"
AMTOOL = ROOT / ".cache" / "promtool" / "usr" / "bin" / "amtool"


def test_amtool_accepts_the_configuration() -> None:
    assert AMTOOL.exists(), "amtool not found: `make promtool` fetches Debian's prometheus-alertmanager"
    result = subprocess.run([str(AMTOOL), "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_goes_to_on_call_firing_and_resolved() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["route"]["receiver"] == "on-call" and "routes" not in config["route"]
    (receiver,) = config["receivers"]
    assert receiver["webhook_configs"] and all(hook["send_resolved"] for hook in receiver["webhook_configs"])
    assert "alertname" in config["route"]["group_by"]


def test_prometheus_sends_to_the_alertmanager_compose_runs_with_this_file() -> None:
    prometheus = yaml.safe_load((ROOT / "observability" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for am in prometheus["alerting"]["alertmanagers"] for c in am["static_configs"] for t in c["targets"]]
    assert targets == ["alertmanager:9093"]
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]["alertmanager"]
    assert "./observability/alertmanager:/etc/alertmanager:ro" in service["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in service["command"]
