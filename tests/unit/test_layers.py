"""The import-linter contracts in pyproject.toml hold, and they catch a module that reaches up a layer
(`make test` runs `lint-imports` too; this shows the check bites)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint() -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_layers_hold() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("package", "target"), [
    ("streams", "cli.main"),          # a stage reaching up into the command line
    ("scout", "jobs.gold"),           # the core reaching up into a stage
    ("simulator", "ingest_api.app"),  # the simulator reaching up into the API that runs it
])
def test_importing_upwards_breaks_the_layers(package: str, target: str) -> None:
    probe = ROOT / package / "_layer_probe.py"
    probe.write_text(f'"""A module reaching up."""\n\nimport {target}  # noqa: F401\n')
    try:
        result = _lint()
    finally:
        probe.unlink()
    assert result.returncode != 0
    assert "layers: cli > stages > simulator > observability > core BROKEN" in result.stdout
    assert f"{package}._layer_probe -> {target}" in result.stdout
