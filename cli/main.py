"""The ``scout`` command line: the composition root that wires settings into every stage.

Nothing imports this module; it imports the stages lazily so ``scout --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.bronze import bronze_app
from cli.config import database_dsn as _dsn
from cli.config import load_settings as _settings
from cli.quality import quality_app
from cli.simulate import simulate, uat
from jobs.names import JOB_NAMES
from scout.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Scout: a streaming medallion pipeline for point-of-sale data.")
jobs_app = typer.Typer(no_args_is_help=True, help="List and run scheduled jobs.")
app.add_typer(jobs_app, name="jobs")
quarantine_app = typer.Typer(no_args_is_help=True, help="List and replay quarantined transactions.")
app.add_typer(quarantine_app, name="quarantine")
products_app = typer.Typer(no_args_is_help=True, help="The product catalogue.")
app.add_typer(products_app, name="products")
tokens_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke device tokens of the ingest API.")
app.add_typer(tokens_app, name="tokens")
app.add_typer(quality_app, name="quality")
app.add_typer(bronze_app, name="bronze")
topics_app = typer.Typer(no_args_is_help=True, help="Scout's Kafka topics.")
app.add_typer(topics_app, name="topics")
app.command()(simulate)
app.command()(uat)
console = Console()
err = Console(stderr=True)


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # httpx logs every request's full URL at INFO: the alert webhook's URL carries credentials
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from observability.logs import summarise_repeats

    summarise_repeats(logging.getLogger().handlers)  # a broker outage: a few lines with counts, not thousands


@contextlib.contextmanager
def _database_errors(dsn: str) -> Iterator[None]:
    """A database that cannot be reached or refuses the statement: a message and exit 1, not a traceback."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        host = dsn.split("@")[-1]
        err.print(f"[red]database error ({host}):[/] {str(exc).strip()}\n"
                  "Check SCOUT_DATABASE_URL and that `scout migrate` has run.")
        raise typer.Exit(1) from None


def _data_dir(settings: Settings) -> None:
    """Create SCOUT_DATA_DIR (and its parents) when missing; say which variable to fix when that fails."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err.print(f"[red]cannot create the data folder {settings.data_dir.absolute()}:[/] {exc.strerror}\n"
                  "Set SCOUT_DATA_DIR to a folder this user can create or write.")
        raise typer.Exit(2) from None


@contextlib.contextmanager
def _metrics_port() -> Iterator[None]:
    """A metrics port that is taken: the message names the variable to set, exit 2 (nothing started yet)."""
    from observability.serve import MetricsPortTaken

    try:
        yield
    except MetricsPortTaken as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


def _exit_0_on_sigterm() -> None:
    """SIGTERM is the ordinary way to stop a service: after the process has shut down cleanly it exits 0.

    uvicorn handles the signal itself and, once shut down, restores this handler and raises the signal again;
    the scheduler's blocking loop is left through the SystemExit below.
    """
    import signal

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit)


@app.command()
def migrate(status: Annotated[bool, typer.Option("--status", help="Only show what is applied.")] = False) -> None:
    """Apply the numbered SQL migrations (idempotent, checksummed)."""
    from scout.migrate import MigrationChanged
    from scout.migrate import migrate as run_migrate
    from scout.migrate import status as migration_status

    dsn = _dsn(_settings())
    try:
        if status:
            table = Table("version", "name", "applied")
            for m in migration_status(dsn):
                table.add_row(f"{m.version:04d}", m.name, "yes" if m.applied else "no")
            console.print(table)
            return
        applied = run_migrate(dsn)
    except MigrationChanged as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"applied {len(applied)} migration(s): {applied}" if applied else "database is up to date")


@topics_app.command("create")
def topics_create() -> None:
    """Create the transactions topic (SCOUT_TOPIC_PARTITIONS partitions) and the dead-letter topic when missing.

    Each gets SCOUT_TOPIC_REPLICATION_FACTOR copies (one per broker on a smaller cluster) and
    min.insync.replicas = SCOUT_TOPIC_MIN_INSYNC_REPLICAS (at most the copies it got).

    Needed once per deployment on a broker that does not create topics by itself (auto.create.topics.enable=false,
    the usual production setting); `scout up` does it for its embedded broker.
    """
    from kafka.errors import KafkaError

    from scout.kafka import ensure_topics

    settings = _settings()
    wanted = [settings.topic, settings.dead_letter_topic]
    try:
        made = ensure_topics(settings)
    except KafkaError as exc:
        err.print(f"[red]Kafka error ({settings.kafka_bootstrap}):[/] {exc!r}\n"
                  "Check SCOUT_KAFKA_BOOTSTRAP and that the broker is up.")
        raise typer.Exit(1) from None
    for topic in wanted:
        partitions = settings.topic_partitions if topic == settings.topic else 1
        state = "created" if topic in made.created else "already exists (`scout verify` checks its replication)"
        console.print(f"{topic}: {state}" + (f" ({partitions} partition(s), {made.replication.note})"
                                              if topic in made.created else ""))


@app.command()
def api(workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1) -> None:
    """Run the ingest API (FastAPI under uvicorn) on SCOUT_API_HOST:SCOUT_API_PORT.

    With several workers, /metrics/ sums every worker's metrics (prometheus_client multiprocess mode in
    PROMETHEUS_MULTIPROC_DIR, by default SCOUT_DATA_DIR/metrics/api, emptied at start).
    """
    import os

    import uvicorn

    from observability.multiprocess import ENV, prepare_directory

    settings = _settings()
    _logging(settings)
    _data_dir(settings)
    _exit_0_on_sigterm()
    if workers > 1 or os.environ.get(ENV):
        prepare_directory(Path(os.environ.get(ENV) or settings.data_dir / "metrics" / "api").absolute())
    if workers == 1:
        from ingest_api.app import create_app
        from scout.gc_tuning import tune_gc

        api = create_app(settings)
        tune_gc()
        uvicorn.run(api, host=settings.api_host, port=settings.api_port,
                    log_level=settings.log_level, access_log=False)
    else:
        uvicorn.run("ingest_api.asgi:app", host=settings.api_host, port=settings.api_port, workers=workers,
                    log_level=settings.log_level, access_log=False)


@app.command()
def worker(
    silver: Annotated[bool, typer.Option(help="Also run the silver loop in this worker.")] = True,
) -> None:
    """Run a stream worker (Faust): the bronze consumer and the silver loop."""
    _exit_0_on_sigterm()  # a worker told to stop while still starting; Faust installs its own handler later
    from streams.app import create_app, run_worker

    settings = _settings()
    _data_dir(settings)
    sys.argv = sys.argv[:1]  # Faust reads argv; keep it from seeing ours
    with _metrics_port():
        run_worker(create_app(settings, silver=silver), settings)


@app.command()
def scheduler() -> None:
    """Run the job scheduler (gold refresh, ...) until interrupted."""
    from jobs.scheduler import build_scheduler
    from scout.db import open_pool

    settings = _settings()
    _logging(settings)
    _dsn(settings)
    from observability.serve import serve_metrics

    with _metrics_port():
        serve_metrics(settings.metrics_host, settings.scheduler_metrics_port, process="scheduler",
                      variable="SCOUT_SCHEDULER_METRICS_PORT")
    _exit_0_on_sigterm()
    with open_pool(settings, name="scheduler", max_size=4) as pool:
        sched = build_scheduler(settings, pool)
        try:
            sched.start()
        except (KeyboardInterrupt, SystemExit):
            sched.shutdown(wait=True)


@jobs_app.command("list")
def jobs_list() -> None:
    """Show the scheduled jobs and, when the database is reachable, each one's last run."""
    import psycopg

    from jobs.registry import JOBS, last_runs

    settings = _settings()
    runs: dict[str, dict[str, object]] = {}
    if settings.database_url is not None:
        try:
            with psycopg.connect(settings.database_dsn(), connect_timeout=5) as conn:
                runs = last_runs(conn)
        except psycopg.Error as exc:
            err.print(f"[yellow]last runs unavailable:[/] {exc}")
    table = Table("name", "every (s)", "what", "last run", "status")
    for job in JOBS.values():
        last = runs.get(job.name, {})
        started = last.get("started_at")
        table.add_row(job.name, f"{job.interval_s(settings):g}", job.description,
                      f"{started:%Y-%m-%d %H:%M:%S}" if started else "-", str(last.get("status") or "-"))
    console.print(table)


@jobs_app.command("run")
def jobs_run(name: Annotated[str, typer.Argument(help=f"The job: {', '.join(JOB_NAMES)}", metavar="NAME")]) -> None:
    """Run one job now and print its result (`scout jobs list` says what each one does)."""
    from jobs.registry import JOBS, run_job
    from scout.db import open_pool

    if name not in JOBS:
        err.print(f"[red]no job named {name!r}[/]; `scout jobs list` shows them")
        raise typer.Exit(2)
    settings = _settings()
    with open_pool(settings, name="cli-jobs") as pool:
        try:
            console.print(run_job(name, pool, settings))
        except Exception as exc:
            err.print(f"[red]job {name} failed:[/] {exc}")
            raise typer.Exit(1) from None


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="Who holds it, e.g. the device or system name")],
    scope: Annotated[list[str] | None, typer.Option(help="ingest (default), read or admin; repeatable")] = None,
    store: Annotated[list[str] | None, typer.Option(help="A store it may post for (repeat for several)")] = None,
    all_stores: Annotated[bool, typer.Option("--all-stores", help="May post for every store")] = False,
    device: Annotated[str | None, typer.Option(help="Its device_id: naming another device is refused")] = None,
    rate_limit: Annotated[float | None, typer.Option(help="Requests/s per API process (default: the API's)")] = None,
    expires_in_days: Annotated[float | None, typer.Option(help="Expire after this many days")] = None,
) -> None:
    """Create a token; prints it once on stdout (only its SHA-256 is stored)."""
    from datetime import timedelta

    from ingest_api.tokens import create_token

    if bool(store) == all_stores:
        err.print("[red]give --store STORE (repeatable) or --all-stores[/], not both and not neither")
        raise typer.Exit(2)
    if expires_in_days is not None and expires_in_days <= 0:
        err.print("[red]--expires-in-days must be positive[/]")
        raise typer.Exit(2)
    dsn = _dsn(_settings())
    try:
        with _database_errors(dsn):
            created = create_token(dsn, name=name, scopes=scope or ["ingest"], store_ids=None if all_stores else store,
                                   device_id=device, rate_limit_per_s=rate_limit,
                                   expires_in=timedelta(days=expires_in_days) if expires_in_days else None)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    err.print(f"token {created.id} ({created.name!r}) created; it is shown only now, store it safely:")
    print(created.secret)  # noqa: T201 - the token alone on stdout, for scripts


@tokens_app.command("list")
def tokens_list(
    active: Annotated[bool, typer.Option("--active", help="Hide revoked tokens")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per token, for scripts")] = False,
) -> None:
    """Show tokens (never their secrets)."""
    from datetime import UTC, datetime

    import orjson

    from ingest_api.tokens import list_tokens

    dsn = _dsn(_settings())
    with _database_errors(dsn):
        rows = list_tokens(dsn, include_revoked=not active)
    if as_json:
        for r in rows:
            print(orjson.dumps(r, default=str).decode())  # noqa: T201 - machine-readable output
        return
    now = datetime.now(UTC)
    table = Table("id", "name", "token", "scopes", "stores", "device", "rate/s", "last used", "state")
    for r in rows:
        expired = r["expires_at"] is not None and r["expires_at"] <= now
        state = "revoked" if r["revoked_at"] else "expired" if expired else "active"
        table.add_row(str(r["id"]), r["name"], r["token_prefix"] + "…", ",".join(r["scopes"]),
                      ",".join(r["store_ids"]) if r["store_ids"] is not None else "(all)", r["device_id"] or "",
                      f"{r['rate_limit_per_s']:g}" if r["rate_limit_per_s"] is not None else "(default)",
                      f"{r['last_used_at']:%Y-%m-%d %H:%M}" if r["last_used_at"] else "never", state)
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="The id shown by `scout tokens list`")]) -> None:
    """Revoke a token: the API refuses it from its next request on."""
    from ingest_api.tokens import revoke_token

    dsn = _dsn(_settings())
    with _database_errors(dsn):
        revoked = revoke_token(dsn, token_id)
    if not revoked:
        err.print(f"[red]no active token with id {token_id}[/]; `scout tokens list` shows them")
        raise typer.Exit(1)
    console.print(f"token {token_id} revoked")


@app.command()
def up(
    duration: Annotated[float, typer.Option(help="Stop by itself after this many seconds (0: run until Ctrl-C)")] = 0,
    rate: Annotated[float, typer.Option(help="Simulated transactions per second")] = 20.0,
) -> None:
    """Run everything on the embedded default: PostgreSQL, Tansu, API, worker, scheduler, traffic."""
    from cli.up import run_up

    raise typer.Exit(run_up(_settings(), duration=duration, rate=rate, console=console))


@app.command()
def verify(
    max_lag: Annotated[int, typer.Option(help="Most messages the workers' consumer group may be behind")] = 10_000,
    max_silver_delay: Annotated[float, typer.Option(help="Oldest bronze row still waiting for silver, seconds")]
    = 300.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the checks as JSON")] = False,
) -> None:
    """Check a deployment end to end: database, migrations, roles and grants, topics, consumer group and lag,
    silver backlog, gold freshness, scheduler jobs, open critical alerts. Exit 1 when a check fails."""
    from cli.verify.command import run_verify

    raise typer.Exit(run_verify(_settings(), console=console, max_lag=max_lag, max_silver_delay_s=max_silver_delay,
                                json_output=json_output))


@quarantine_app.command("list")
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this reason code")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include replayed rows")] = False,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """Show quarantined transactions (open ones by default) and the open count per reason."""
    import psycopg

    from streams.silver.quarantine import list_quarantine, open_counts

    with psycopg.connect(_dsn(_settings())) as conn:
        rows = list_quarantine(conn, reason=reason, include_replayed=all_, limit=limit)
        counts = open_counts(conn)
    table = Table("id", "when", "reasons", "store", "transaction", "bronze id", "details", "replayed")
    for r in rows:
        table.add_row(str(r["id"]), f"{r['created_at']:%Y-%m-%d %H:%M:%S}", ",".join(r["reasons"]),
                      r["store_id"] or "", r["transaction_id"] or "", str(r["bronze_id"]),
                      str(r["details"])[:60], "yes" if r["replayed_at"] else "")
    console.print(table)
    console.print("open by reason: " + (", ".join(f"{k}={v}" for k, v in counts.items()) or "none"))


@quarantine_app.command("replay")
def quarantine_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Quarantine ids to replay")] = None,
    reason: Annotated[str | None, typer.Option(help="Replay every open row with this reason")] = None,
) -> None:
    """Send quarantined transactions back through silver after fixing the cause."""
    import psycopg

    from streams.silver.quarantine import replay

    if not ids and reason is None:
        err.print("[red]name quarantine ids or --reason[/]; `scout quarantine list` shows them")
        raise typer.Exit(2)
    with psycopg.connect(_dsn(_settings())) as conn:
        replayed = replay(conn, ids=ids or None, reason=reason)
    console.print(f"replayed {len(replayed)} transaction(s); the silver workers process them again")


@products_app.command("import")
def products_import(path: Annotated[str, typer.Argument(help="CSV with columns sku,name[,brand,category]")]) -> None:
    """Load or update products by SKU; name-only line items can then link to them."""
    from pathlib import Path

    import psycopg

    from jobs.products import CatalogueFileError, import_products, read_catalogue_csv

    file = Path(path)
    if not file.is_file():
        err.print(f"[red]no such file: {path}[/]")
        raise typer.Exit(2)
    try:
        with psycopg.connect(_dsn(_settings())) as conn:
            counts = import_products(conn, read_catalogue_csv(file))
    except CatalogueFileError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"products: {counts['inserted']} new, {counts['updated']} updated; "
                  "`scout jobs run product-relink` links earlier unlinked lines")


@app.command()
def bench(
    part: Annotated[str, typer.Argument(help="all, or parts comma-separated: ingest, bronze, silver, e2e, link, "
                                             "gold, upload, quality, status, retention")]
    = "all",
    count: Annotated[int, typer.Option(help="Transactions in the Kafka / bronze backlog", min=1000)] = 200_000,
    broker: Annotated[str, typer.Option(help="kafka (Apache Kafka from jars) or tansu")] = "kafka",
    silver_workers: Annotated[int, typer.Option(min=1)] = 1,
    out: Annotated[str, typer.Option(help="Folder for the JSON report")] = "bench-results",
    upload_lines: Annotated[int, typer.Option(help="Lines of the generated upload CSV", min=1000)] = 1_000_000,
    duration: Annotated[float, typer.Option(help="e2e: seconds of sustained load", min=5)] = 180,
    rate: Annotated[float, typer.Option(help="e2e: offered transactions per second", min=1)] = 2_000,
    repeats: Annotated[int, typer.Option(help="e2e: runs, reported as median and spread", min=1)] = 1,
    scales: Annotated[str, typer.Option(help="gold: line items in silver to measure at, comma separated "
                                             "(two or more also plot the scaling)")] = "100000,1000000",
) -> None:
    """Measure Scout next to this machine's raw limits (Kafka, COPY) in the same run; print and write JSON."""
    from pathlib import Path

    from cli.bench.run import PARTS, run_bench

    asked = part.split(",")  # e.g. "bronze,silver"
    if part != "all" and (unknown := [p for p in asked if p not in PARTS]):
        err.print(f"[red]unknown part {unknown[0]!r}[/]; choose all, {', '.join(PARTS)} (or several, comma-separated)")
        raise typer.Exit(2)
    if broker not in ("kafka", "tansu"):
        err.print("[red]--broker must be kafka or tansu[/]")
        raise typer.Exit(2)
    try:
        gold_scales = tuple(sorted({int(s.replace("_", "")) for s in scales.split(",") if s.strip()}))
    except ValueError:
        err.print(f"[red]--scales must be numbers separated by commas[/], got {scales!r}")
        raise typer.Exit(2) from None
    if not gold_scales or min(gold_scales) < 3_000:
        err.print("[red]--scales needs at least one size of 3,000 line items or more[/]")
        raise typer.Exit(2)
    parts = list(PARTS) if part == "all" else [p for p in PARTS if p in asked]
    run_bench(parts, count=count, broker=broker, silver_workers=silver_workers,  # type: ignore[arg-type]  # broker: a str checked above
              out_dir=Path(out), cache_dir=Path(".cache").absolute(), console=console, upload_lines=upload_lines,
              duration=duration, rate=rate, repeats=repeats, gold_scales=gold_scales)


@app.command(name="upload")
def upload_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV of invoice lines (.csv or .csv.gz)")],
    url: Annotated[str, typer.Option(help="Base URL of the ingest API")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="SCOUT_API_TOKEN", show_envvar=True,
                                              help="Token with the ingest (or admin) scope")] = None,
    mapping: Annotated[str, typer.Option(help="Column mapping: a preset name or a JSON mapping file")]
    = "online_retail_ii",
) -> None:
    """Upload a CSV of invoice lines as bulk transactions; shows progress; exit 1 unless the job succeeded."""
    import httpx

    from cli.upload import UploadRefused, upload

    try:
        job = upload(file, url=url, token=token, mapping=mapping, console=err)
    except (UploadRefused, httpx.HTTPError, ValueError) as exc:
        err.print(f"[red]upload failed:[/] {exc}\nCheck --url, --token (ingest scope) and --mapping.")
        raise typer.Exit(1) from None
    console.print_json(data=job)
    if job["state"] != "succeeded":
        err.print(f"[yellow]upload {job['id']} {job['state']}:[/] {job['reason']}; "
                  f"rejected rows: {url}/v1/uploads/{job['id']}/errors.csv")
        raise typer.Exit(1)




def main() -> None:
    app()


if __name__ == "__main__":
    main()
