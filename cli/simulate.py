"""`scout simulate` and `scout uat`: thin commands over simulator/ (posting, files, the UAT checks)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from simulator.client import PlanReport
    from simulator.faults import FaultPlan
    from simulator.replay import Replay
    from simulator.source import TransactionSource

console = Console()
err = Console(stderr=True)

Url = Annotated[str, typer.Option(help="Base URL of the ingest API")]
Rate = Annotated[float, typer.Option(help="Transactions per second")]
Duration = Annotated[float, typer.Option(help="Seconds to run")]
Seed = Annotated[int, typer.Option(help="Seed: the same seed sends the same transactions and faults")]
Faults = Annotated[str, typer.Option(help='Fault rates, e.g. "exact_resend=0.05,bad_total=0.01" or "all=0.01"')]
Token = Annotated[str | None, typer.Option(envvar="SCOUT_API_TOKEN", show_envvar=True,
                                           help="Device token with the ingest scope (all stores)")]
Concurrency = Annotated[int, typer.Option(min=1, help="Requests in flight at most")]


def _plan(faults: str, seed: int, rate: float, duration: float) -> FaultPlan:
    from simulator.faults import FaultPlan

    if rate <= 0 or duration <= 0:
        err.print("[red]--rate and --duration must be positive[/]")
        raise typer.Exit(2)
    try:
        return FaultPlan.parse(faults, seed=seed)
    except ValueError as exc:
        err.print(f"[red]--faults: {exc}[/]")
        raise typer.Exit(2) from None


def post_with_progress(url: str, gen: TransactionSource, plan: FaultPlan, *, rate: float, duration: float,
                       token: str | None, concurrency: int, count: int | None = None) -> PlanReport:
    """Post for ``duration`` s (or ``count`` transactions) with a progress bar: achieved rate and errors."""
    from simulator.client import post_plan

    columns = (TextColumn("[bold]simulate"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} tx"),
               TextColumn("{task.fields[rate]:.1f}/s"), TextColumn("errors {task.fields[errors]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        total = rate * duration if count is None else min(count, rate * duration)
        task = progress.add_task("simulate", total=total, rate=0.0, errors=0)

        def update(report: PlanReport) -> None:
            failed = report.errors + sum(c for s, c in report.by_status.items() if s >= 500)
            progress.update(task, completed=report.sent, rate=report.achieved_rate, errors=failed)

        report = asyncio.run(post_plan(url, gen, plan, rate=rate, duration_s=duration, token=token,
                                       concurrency=concurrency, count=count, on_progress=update))
        update(report)
    return report


def write_record_file(path: Path | None, report: PlanReport) -> None:
    if path is not None:
        path.write_bytes(b"".join(r.to_json() + b"\n" for r in report.records))


def simulate(
    url: Url = "http://127.0.0.1:8000", rate: Rate = 20.0, duration: Duration = 10.0, seed: Seed = 42,
    faults: Faults = "", token: Token = None, concurrency: Concurrency = 16,
    out_ndjson: Annotated[Path | None, typer.Option(help="Write NDJSON request bodies instead of posting")] = None,
    out_csv: Annotated[Path | None, typer.Option(help="Write an invoice CSV instead of posting")] = None,
    records: Annotated[Path | None, typer.Option(help="Write every injected fault as JSON lines")] = None,
    replay: Annotated[Path | None, typer.Option(
        help="Send the invoices of this CSV (Online Retail II layout, .csv or .csv.gz) instead of generated ones; "
             "stops at the end of the file")] = None,
    shift_to_now: Annotated[bool, typer.Option(
        help="With --replay: move all timestamps so the newest invoice is now (gaps kept)")] = False,
) -> None:
    """Post simulated transactions (with faults) to a running API, or write them to a file."""
    from simulator.generator import Generator
    from simulator.outputs import write_csv, write_ndjson

    plan = _plan(faults, seed, rate, duration)
    gen: TransactionSource = Generator(seed)
    limit: int | None = None
    if replay is not None:
        replayed = _load_replay(replay, shift_to_now)
        gen, limit = replayed, len(replayed)
    elif shift_to_now:
        err.print("[red]--shift-to-now goes with --replay[/]")
        raise typer.Exit(2)
    if out_ndjson and out_csv:
        err.print("[red]give --out-ndjson or --out-csv, not both[/]")
        raise typer.Exit(2)
    if out_ndjson or out_csv:
        count = int(rate * duration) if limit is None else min(limit, int(rate * duration))
        with records.open("wb") if records else contextlib.nullcontext() as rec:
            if out_ndjson:
                with out_ndjson.open("wb") as out:
                    counts = write_ndjson(out, gen, plan, count=count, records=rec)
            else:
                assert out_csv is not None
                with out_csv.open("w", newline="", encoding="utf-8") as text:
                    counts = write_csv(text, gen, plan, count=count, records=rec)
        console.print(f"wrote {count} transaction(s) to {out_ndjson or out_csv}: {dict(counts)}")
        return
    report = post_with_progress(url, gen, plan, rate=rate, duration=duration, token=token, concurrency=concurrency,
                                count=limit)
    write_record_file(records, report)
    console.print(f"sent {report.sent} transaction(s) ({report.requests} request(s)) in {report.elapsed_s:.1f}s "
                  f"({report.achieved_rate:.1f}/s of {rate:g}/s); status {dict(report.by_status)}; "
                  f"connection errors {report.errors}; faults injected {len(report.records)}")
    if report.retries:
        console.print(f"resent {report.retries} time(s) after transport errors {dict(report.error_kinds)}")
    if report.errors or any(s >= 500 or s == 0 for s in report.by_status):
        raise typer.Exit(1)


def _load_replay(path: Path, shift_to_now: bool) -> Replay:
    from datetime import UTC, datetime

    from scout.invoice_mapping import UploadFormatError
    from simulator.replay import Replay

    if not path.is_file():
        err.print(f"[red]--replay: no such file {path}[/]")
        raise typer.Exit(2)
    try:
        replay = Replay.load(path, shift_to=datetime.now(UTC) if shift_to_now else None)
    except UploadFormatError as exc:
        err.print(f"[red]--replay {path}: {exc}[/]; give a CSV in the Online Retail II layout")
        raise typer.Exit(2) from None
    console.print(f"replaying {len(replay)} invoice(s) from {replay.rows} row(s) of {path.name}; "
                  f"rows left out by the upload rules: {dict(replay.left_out)}")
    return replay


def uat(
    token: Annotated[str, typer.Option(envvar="SCOUT_API_TOKEN", show_envvar=True,
                                       help="Device token with the ingest scope for all stores")],
    database_url: Annotated[str, typer.Option(envvar="SCOUT_DATABASE_URL", show_envvar=True,
                                              help="The deployment's database (read, plus a gold refresh)")],
    url: Url = "http://127.0.0.1:8000", rate: Rate = 50.0, duration: Duration = 30.0, seed: Seed = 42,
    faults: Faults = "exact_resend=0.02,conflicting_duplicate=0.01,malformed_json=0.01,missing_field=0.01,"
                     "bad_total=0.01,negative_quantity=0.01,over_threshold=0.01,late_event=0.01",
    concurrency: Concurrency = 16,
    settle_timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline to settle")] = 180.0,
    quality_wait: Annotated[float, typer.Option(help="Seconds to wait for a quality run after settling")] = 90.0,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here")] = None,
    expect_faults: Annotated[str | None, typer.Option(hidden=True, help="Check against this plan instead")] = None,
    poison: Annotated[int, typer.Option(min=0, help="Also write this many undecodable messages straight to the "
                                                    "topic and check they end in the dead letters")] = 0,
    kafka_bootstrap: Annotated[str | None, typer.Option(envvar="SCOUT_KAFKA_BOOTSTRAP", show_envvar=True,
                                                        help="The deployment's Kafka (for --poison)")] = None,
    topic: Annotated[str, typer.Option(envvar="SCOUT_TOPIC", show_envvar=True,
                                       help="The transactions topic (for --poison)")] = "pos.transactions.v1",
) -> None:
    """Simulate with faults against a deployment, wait for it to settle, check the invariants; exit 1 on failure."""
    from rich.table import Table

    from cli.uat import SettleTimeout, UatConfig, run_uat

    _plan(faults, seed, rate, duration)
    if poison and not kafka_bootstrap:
        err.print("[red]--poison needs --kafka-bootstrap (or SCOUT_KAFKA_BOOTSTRAP): the deployment's Kafka[/]")
        raise typer.Exit(2)
    config = UatConfig(url=url, token=token, dsn=database_url, rate=rate, duration_s=duration, seed=seed,
                       faults=faults, expect_faults=expect_faults, settle_timeout_s=settle_timeout,
                       quality_wait_s=quality_wait, concurrency=concurrency, poison=poison,
                       kafka_bootstrap=kafka_bootstrap, topic=topic,
                       catalogue_refresh_s=_catalogue_refresh_s())
    try:
        result = run_uat(config, post=lambda gen, plan: post_with_progress(
            url, gen, plan, rate=rate, duration=duration, token=token, concurrency=concurrency))
    except SettleTimeout as exc:
        err.print(f"[red]UAT failed: {exc}[/]; check `scout verify` and the worker logs")
        raise typer.Exit(1) from None
    table = Table("check", "result", "checked", "detail", title=f"UAT seed {seed}: {result.figures}")
    for check in result.checks:
        table.add_row(check.name, "[green]pass[/]" if check.passed else "[red]FAIL[/]", str(check.checked),
                      check.detail + "".join(f"\n  {f}" for f in check.failures[:5]))
    console.print(table)
    if report is not None:
        report.write_bytes(result.to_json())
        console.print(f"report written to {report}")
    console.print("[green]UAT passed[/]" if result.passed else "[red]UAT failed[/]")
    raise typer.Exit(0 if result.passed else 1)


def _catalogue_refresh_s() -> float:
    """The workers' catalogue refresh (SCOUT_CATALOGUE_REFRESH_S, as the deployment sets it) for judging
    misspellings; the default when the environment does not say."""
    from scout.settings import Settings

    try:
        return Settings().catalogue_refresh_s
    except ValueError:
        return Settings.model_fields["catalogue_refresh_s"].default
