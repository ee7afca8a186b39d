"""The import-linter contracts in pyproject.toml hold, and they catch a stage that reaches up into the command
line (`make test` runs `lint-imports` too; this shows the check bites)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint() -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_the_layers_hold() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_stage_importing_the_command_line_breaks_a_contract() -> None:
    probe = ROOT / "streams" / "_layer_probe.py"
    probe.write_text('"""A stage module reaching up."""\n\nfrom scout.cli.main import app  # noqa: F401\n')
    try:
        result = _lint()
    finally:
        probe.unlink()
    assert result.returncode != 0
    assert "stages never import the command line or its tools BROKEN" in result.stdout
    assert "streams._layer_probe -> scout.cli.main" in result.stdout
