"""Print verify results as a rich table or JSON; the exit code is 1 when any check failed."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from cli.verify.model import Result

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def exit_code(results: Sequence[Result]) -> int:
    return 1 if any(r.status == "fail" for r in results) else 0


def as_json(results: Sequence[Result]) -> str:
    return json.dumps({"ok": exit_code(results) == 0, "checks": [r.as_dict() for r in results]}, indent=2)


def table(results: Sequence[Result]) -> Table:
    out = Table("check", "status", "detail", title="scout verify", show_lines=False)
    for r in results:
        out.add_row(r.check, f"[{STYLE[r.status]}]{r.status}[/]", r.detail)
    return out


def render(results: Sequence[Result], console: Console, *, json_output: bool = False) -> int:
    if json_output:
        console.print_json(as_json(results)) if console.is_terminal else console.out(as_json(results))
    else:
        console.print(table(results))
        failed = [r.check for r in results if r.status == "fail"]
        console.print(f"[bold red]FAILED:[/] {', '.join(failed)}" if failed else "[green]all checks passed[/]")
    return exit_code(results)
