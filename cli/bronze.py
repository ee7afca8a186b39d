"""`scout bronze …`: what an operator does to bronze's landed offsets (``ops.stream_offsets``).

Example::

    scout bronze offsets          # per partition: landed offset, broker range, epoch, owner
    scout bronze reset-offsets    # the topic was recreated on purpose: start every partition over
"""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from cli.config import database_dsn, load_settings
from scout.db import q
from scout.settings import Settings

bronze_app = typer.Typer(no_args_is_help=True, help="Bronze's landed offsets per partition (ops.stream_offsets).")
console = Console()


def broker_range(settings: Settings) -> dict[int, tuple[int, int]]:
    """Partition -> (earliest, end) offsets of the transactions topic on the broker."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=15_000)
    try:
        partitions = consumer.partitions_for_topic(settings.topic) or set()
        tps = [TopicPartition(settings.topic, p) for p in sorted(partitions)]
        earliest = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
        return {tp.partition: (int(earliest[tp]), int(end[tp])) for tp in tps}
    finally:
        consumer.close()


def reset_offsets(settings: Settings, dsn: str) -> dict[int, int]:
    """Start every partition PostgreSQL tracks over at the broker's earliest offset, under a new epoch.
    Landing is idempotent (event hash), so records read again are counted as duplicates, never twice."""
    found = broker_range(settings)
    offsets = {p: earliest for p, (earliest, _) in found.items()}
    with psycopg.connect(dsn) as conn:
        conn.execute(q("stream_offsets_reset"), {"topic": settings.topic, "partitions": list(offsets),
                                                 "offsets": list(offsets.values())})
    return offsets


@bronze_app.command("offsets")
def offsets_command() -> None:
    """Per partition: the next offset to land, the broker's range, the epoch and the worker holding it."""

    settings = load_settings()
    with psycopg.connect(database_dsn(settings)) as conn:
        rows = conn.execute("SELECT kafka_partition, next_offset, epoch, owner, updated_at FROM ops.stream_offsets "
                            "WHERE kafka_topic = %s ORDER BY kafka_partition", (settings.topic,)).fetchall()
    found = broker_range(settings)
    table = Table("partition", "landed (next offset)", "broker earliest", "broker end", "waiting", "epoch", "owner",
                  "moved at")
    for partition, landed, epoch, owner, updated in rows:
        earliest, end = found.get(partition, (None, None))
        waiting = "" if end is None else str(max(end - landed, 0))
        table.add_row(str(partition), str(landed), str(earliest), str(end), waiting, str(epoch), owner or "",
                      f"{updated:%Y-%m-%d %H:%M:%S%z}")
    console.print(table)


@bronze_app.command("reset-offsets")
def reset_offsets_command(
    yes: Annotated[bool, typer.Option("--yes", help="Do it (without it, only show what would change).")] = False,
) -> None:
    """The topic was recreated on purpose: land every partition again from the broker's earliest offset.

    Workers refuse to start while PostgreSQL has landed past the broker's end of a partition; this is the way
    out. Records read again are recognised by their event hash and land once."""

    settings = load_settings()
    found = broker_range(settings)
    if not found:
        console.print(f"[red]topic {settings.topic} has no partitions on the broker[/]; create it first")
        raise typer.Exit(1)
    if not yes:
        console.print(f"would start {len(found)} partition(s) of {settings.topic} over at "
                      f"{ {p: e for p, (e, _) in found.items()} }; run again with --yes")
        return
    offsets = reset_offsets(settings, database_dsn(settings))
    console.print(f"{settings.topic}: partitions start over at {offsets} (new epoch); start the workers")
