"""`scout tokens` refuses bad arguments and an unreachable database with a message, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.services import free_port


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "pos"], "--all-stores"),
        (["--name", "pos", "--store", "S1", "--all-stores"], "not both"),
        (["--name", "pos", "--all-stores", "--expires-in-days", "0"], "must be positive"),
        (["--name", "pos", "--all-stores", "--scope", "write"], "scopes must be some of"),
        (["--name", "pos", "--all-stores", "--rate-limit", "0.001"], "rate limit must be between"),
        (["--name", " ", "--all-stores"], "needs a name"),
    ],
)
def test_create_refuses_bad_arguments(monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.setenv("SCOUT_DATABASE_URL", f"postgresql://scout@127.0.0.1:{free_port()}/scout")
    result = CliRunner().invoke(app, ["tokens", "create", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize("command", [["create", "--name", "pos", "--all-stores"], ["list"], ["revoke", "3"]])
def test_unreachable_database_is_a_message(monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setenv("SCOUT_DATABASE_URL", f"postgresql://scout@127.0.0.1:{free_port()}/scout")
    result = CliRunner().invoke(app, ["tokens", *command])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a message, not a psycopg traceback
    assert "Check SCOUT_DATABASE_URL" in " ".join(result.output.split())
