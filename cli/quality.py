"""``scout quality run|rules|alerts``: run the quality suites now, show the rules and the alerts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.config import database_dsn, load_settings

quality_app = typer.Typer(no_args_is_help=True, help="Quality guardrails: run the checks, list rules and alerts.")
console = Console()
err = Console(stderr=True)


@quality_app.command("run")
def run(
    suite: Annotated[str | None, typer.Option(help="Only this suite: silver or gold")] = None,
    window_s: Annotated[float | None, typer.Option(help="Recent window of silver, seconds (default: setting)")]
    = None,
) -> None:
    """Run the Great Expectations suites now, record them and update alerts; exit 1 when a check fails."""
    import time
    from datetime import UTC, datetime, timedelta

    from quality.runner import run_quality
    from quality.suites import SUITES
    from scout.db import open_pool

    if suite is not None and suite not in SUITES:
        err.print(f"[red]unknown suite {suite!r}[/]; choose {', '.join(SUITES)}")
        raise typer.Exit(2)
    settings = load_settings()
    database_dsn(settings)
    since = datetime.now(UTC) - timedelta(seconds=window_s) if window_s else None
    started = time.perf_counter()
    with console.status("running quality checks (loading Great Expectations takes a few seconds)"), \
            open_pool(settings, name="cli-quality", max_size=2) as pool:
        report = run_quality(pool, settings, suite=suite, since=since)
    if report.skipped:
        err.print(f"[yellow]skipped:[/] {report.skipped}")
        raise typer.Exit(1)
    for run_ in report.runs:
        table = Table(title=f"suite {run_.suite} ({run_.duration_ms} ms)", title_justify="left")
        table.add_column("check", no_wrap=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("observed")
        table.add_column("failing keys (sample)")
        for result in run_.results:
            verdict = ("[red]error[/]" if result.error else "[green]pass[/]" if result.success
                       else "[red]FAIL[/]" if result.check.severity == "critical" else "[yellow]FAIL[/]")
            keys = ", ".join(f["key"] for f in result.failing[:3]) + (" …" if len(result.failing) > 3 else "")
            observed = result.error[:200] if result.error else result.observed
            table.add_row(escape(result.check.name), result.check.severity, verdict, escape(observed), escape(keys))
        console.print(table)
    a = report.alerts
    console.print(f"alerts: {len(a.opened)} opened, {len(a.updated)} updated, {len(a.resolved)} resolved; "
                  f"webhook: {report.webhook}; {time.perf_counter() - started:.1f}s")
    if report.failed or report.errors:
        raise typer.Exit(1)


@quality_app.command("rules")
def rules() -> None:
    """Show every rule with its effective severity and where it is checked."""
    from quality.rules import RULES, Thresholds

    limits = Thresholds.from_settings(load_settings())
    table = Table()
    table.add_column("rule", no_wrap=True)
    for column in ("severity", "checked", "suite", "what it catches"):
        table.add_column(column)
    for rule in RULES:
        where = "stream + batch" if rule.stream else "batch"
        table.add_row(rule.name, limits.severity(rule), where, rule.suite, rule.description)
    console.print(table)


@quality_app.command("alerts")
def alerts(
    status: Annotated[str, typer.Option(help="active, resolved or all")] = "active",
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """Show quality alerts (what GET /v1/alerts returns)."""
    import psycopg

    from quality.alerts import list_alerts

    if status not in ("active", "resolved", "all"):
        err.print("[red]--status must be active, resolved or all[/]")
        raise typer.Exit(2)
    with psycopg.connect(database_dsn(load_settings())) as conn:
        rows = list_alerts(conn, status=status, limit=limit)  # type: ignore[arg-type]  # a str checked against the Literal above
    table = Table("id", "rule", "severity", "status", "count", "first seen", "last seen", "message")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["rule"] + (f" [{r['subject']}]" if r["subject"] else "")),
                      r["severity"], r["status"], str(r["count"]), f"{r['first_seen']:%Y-%m-%d %H:%M:%S}",
                      f"{r['last_seen']:%Y-%m-%d %H:%M:%S}", escape(r["message"][:80]))
    console.print(table)
