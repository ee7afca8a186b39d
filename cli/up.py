"""``scout up``: the whole pipeline on the embedded default, in one command.

Starts PostgreSQL (pgserver) and the Tansu broker under ``data_dir``, migrates, creates topics,
creates a device token for the simulator and a read one for the status page (the URL it prints carries it),
starts the API, a stream worker and the scheduler as child
processes, feeds simulated traffic with that token, and on exit (Ctrl-C or --duration) waits for the
pipeline to settle and prints rows per layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from cli.bronze import reset_offsets
from cli.processes import Children, child_env
from cli.services import free_port, port_open, wait_until
from cli.services.postgres import EmbeddedPostgres
from cli.services.tansu import TansuBroker
from ingest_api.tokens import create_token
from scout.db import q
from scout.kafka import ensure_topics
from scout.migrate import migrate
from scout.settings import Settings

DATABASE = "scout"


def _ensure_database(pg: EmbeddedPostgres) -> str:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
    return pg.dsn(DATABASE) if exists else pg.create_database(DATABASE)


def _port(wanted: int) -> int:
    """The configured port, or a free one when another process holds it (0 stays 0: off)."""
    return wanted if wanted == 0 or not port_open("127.0.0.1", wanted) else free_port()


def _metrics_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/metrics" if port else "off"


def _api_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def layer_counts(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        row = conn.execute(q("layer_counts")).fetchone()
    return dict(row or {})


def _settle(dsn: str, timeout: float) -> None:
    """Wait until bronze has nothing pending and silver stopped growing."""
    last: dict[str, Any] = {}

    def settled() -> bool:
        nonlocal last
        now = layer_counts(dsn)
        done = now["bronze_pending"] == 0 and now == last
        last = now
        return bool(done)

    with contextlib.suppress(TimeoutError):  # the summary shows what did not settle
        wait_until(settled, timeout=timeout, what="the pipeline to settle", interval=1.0)


def _summary(console: Console, counts: dict[str, Any]) -> None:
    table = Table("layer", "rows", title="Scout: rows per layer")
    for key, value in counts.items():
        table.add_row(key, f"{value:,}")
    console.print(table)


def run_up(settings: Settings, *, duration: float, rate: float, console: Console) -> int:
    data = settings.data_dir.absolute()
    pg = EmbeddedPostgres(data / "pg", port=free_port())
    broker = TansuBroker(data / "tansu")
    api_port = _port(settings.api_port)
    worker_metrics, scheduler_metrics = _port(settings.worker_metrics_port), _port(settings.scheduler_metrics_port)
    children: Children | None = None
    stop = asyncio.Event()
    try:
        console.print("starting PostgreSQL 16 (pgserver) ...")
        pg.stop_stale()
        pg.start()
        dsn = _ensure_database(pg)
        applied = migrate(dsn)
        console.print(f"  database ready ({len(applied)} migration(s) applied)")
        token = create_token(dsn, name="scout-up simulator", scopes=["ingest"], store_ids=None,
                             rate_limit_per_s=max(100.0, 2 * rate)).secret
        status_token = create_token(dsn, name="scout-up status page", scopes=["read"], store_ids=None).secret
        console.print("starting the Tansu broker (in-memory) ...")
        bootstrap = broker.start()
        run_settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        ensure_topics(run_settings)
        reset_offsets(run_settings, dsn)  # the in-memory broker starts empty: land its partitions from 0
        env = child_env(database_url=dsn, kafka_bootstrap=bootstrap, api_port=str(api_port),
                        data_dir=str(data), log_level=settings.log_level,
                        kafka_idempotence="false", worker_metrics_port=str(worker_metrics),
                        scheduler_metrics_port=str(scheduler_metrics))
        children = Children(env, data / "logs")
        children.start("api", "api")
        children.start("worker", "worker")
        children.start("scheduler", "scheduler")
        url = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: _api_ready(url), timeout=60, what="the API to be ready")
        console.print(f"""
[bold green]Scout is running[/]
  status page    {url}/status#token={status_token}
  ingest API     {url}/v1/transactions   (docs: {url}/docs)
  API metrics    {url}/metrics/
  worker metrics {_metrics_url(settings.metrics_host, worker_metrics)}
  scheduler      {_metrics_url(settings.metrics_host, scheduler_metrics)}
  PostgreSQL     {dsn}
  Kafka (Tansu)  {bootstrap}   topic {settings.topic}
  device token   {token}   (ingest scope, all stores: `Authorization: Bearer ...`)
  logs           {children.log_dir}
sending simulated traffic at {rate:g} tx/s {'for ' + str(duration) + ' s' if duration else 'until Ctrl-C'} ...""",
                      soft_wrap=True)  # addresses and tokens stay whole on one line, whatever the width
        return _traffic_then_summary(url, dsn, rate, duration, children, stop, console, token)
    finally:
        if children is not None:
            children.stop_all()
        broker.stop()
        pg.stop()


def _traffic_then_summary(url: str, dsn: str, rate: float, duration: float, children: Children,
                          stop: asyncio.Event, console: Console, token: str) -> int:
    from simulator.client import post_transactions
    from simulator.generator import Generator

    async def traffic() -> Any:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        return await post_transactions(url, Generator.live(int(time.time()), rate=rate), rate=rate,
                                       duration_s=duration or float("inf"), concurrency=8, stop=stop,
                                       token=token)

    report = asyncio.run(traffic())
    console.print(f"sent {report.sent} transactions ({report.achieved_rate:.1f}/s), status {dict(report.by_status)}")
    dead = children.dead()
    if dead:
        console.print(f"[red]processes exited early: {[c.name for c in dead]}[/]; see their logs")
    console.print("waiting for the pipeline to settle ...")
    _settle(dsn, timeout=60)
    from jobs.gold import refresh_gold
    from scout.db import open_pool

    with open_pool(Settings(database_url=SecretStr(dsn)), name="up-summary") as pool:
        refresh_gold(pool)
    counts = layer_counts(dsn)
    _summary(console, counts)
    ok = counts["bronze"] > 0 and counts["silver_transactions"] > 0 and counts["gold_sales_rows"] > 0 and not dead
    return 0 if ok else 1
