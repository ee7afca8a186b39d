"""Bulk upload throughput: a generated invoice CSV parsed, validated and published (acks=all), with peak RSS."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psutil
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from cli.bench.raw import kafka_produce
from ingest_api.publisher import Publisher
from ingest_api.uploads.job import UploadJob
from scout.contract import Envelope
from scout.db import open_async_pool, q
from scout.invoice_mapping import Mapping, map_csv
from scout.kafka import ensure_topics
from scout.settings import Settings

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
COUNTRIES = ("United Kingdom", "France", "Germany", "EIRE", "Netherlands", "Spain")


def generate(path: Path, lines: int, *, seed: int = 11) -> int:
    """An Online Retail II shaped file: ~20 lines per invoice, 2% of lines with a bad price; returns invoices."""
    rng = random.Random(seed)
    codes = [(f"{20000 + n}", f"PRODUCT {n} {rng.choice(('MUG', 'CANDLE', 'BAG', 'SIGN'))}") for n in range(3000)]
    ts, invoice, written = datetime(2010, 1, 4, 8, 0, tzinfo=UTC), 600_000, 0  # the wall clock written out
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        while written < lines:
            invoice += 1
            ts += timedelta(minutes=rng.randint(1, 9))
            country, stamp = rng.choice(COUNTRIES), ts.strftime("%Y-%m-%d %H:%M:%S")
            for code, name in rng.sample(codes, min(rng.randint(1, 40), lines - written)):
                price = "x" if rng.random() < 0.02 else f"{rng.randint(10, 2000) / 100:.2f}"
                out.write(f"{invoice},{code},{name},{rng.randint(1, 24)},{stamp},{price},{rng.randint(12000, 18000)}.0,"
                          f"{country}\n")
                written += 1
    return invoice - 600_000


class PeakRss:
    """Samples this process's RSS every 50 ms while in use; ``peak_mib`` afterwards."""

    def __init__(self) -> None:
        self.start = psutil.Process().memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        proc = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak / (1 << 20)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start) / (1 << 20)


def bench_upload(bootstrap: str, dsn: str, work_dir: Path, *, lines: int, say: Any) -> dict[str, Any]:
    path = work_dir / "upload.csv"
    say(f"generating {lines:,} invoice lines ...")
    invoices = generate(path, lines)
    mapping = Mapping.preset("online_retail_ii")
    say("parsing and validating only ...")
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as stream:
        envelopes = [Envelope.wrap(g.transaction, source="bulk").to_bytes()
                     for g in map_csv(stream, mapping) if g.transaction is not None]
    parse_s = time.perf_counter() - started
    raw = Settings(kafka_bootstrap=bootstrap, topic="bench.upload.raw", dead_letter_topic="bench.upload.dlq")
    settings = Settings(database_url=SecretStr(dsn), kafka_bootstrap=bootstrap, topic="bench.upload",
                        dead_letter_topic="bench.upload.dlq")
    ensure_topics(raw)
    ensure_topics(settings)
    say("raw Kafka produce of the same messages ...")
    raw_msg_s = kafka_produce(bootstrap, raw.topic, [(b"k", m) for m in envelopes])
    del envelopes
    say("upload job: parse, validate, publish with acks=all ...")
    with PeakRss() as rss:
        job = asyncio.run(_run_job(settings, path))
    job_s = job.pop("seconds")
    return {"lines": lines, "invoices": invoices, "parse_rows_s": lines / parse_s,
            "upload_rows_s": lines / job_s, "upload_tx_s": job["transactions_published"] / job_s,
            "raw_kafka_produce_msg_s": raw_msg_s,
            "ratio_tx_to_produce": job["transactions_published"] / job_s / raw_msg_s,
            "ratio_to_parse_only": parse_s / job_s, "peak_rss_mib": rss.peak_mib,
            "rss_growth_during_job_mib": rss.growth_mib, "job": job,
            "file_mib": path.stat().st_size / (1 << 20)}


async def _run_job(settings: Settings, path: Path) -> dict[str, Any]:
    publisher = Publisher(settings)
    pool = await open_async_pool(settings, name="bench-upload")
    job_id = uuid4()
    try:
        async with pool.connection() as conn:
            await conn.execute(q("upload_job_create"), {
                "id": job_id, "filename": path.name, "owner": "bench",
                "mapping": Jsonb(dataclasses.asdict(Mapping.preset("online_retail_ii"))), "spool_path": str(path)})
        job = UploadJob(settings, publisher, pool, job_id=job_id, mapping=Mapping.preset("online_retail_ii"))
        started = time.perf_counter()
        state = await job.run(path)
        seconds = time.perf_counter() - started
        c = job.counts
        return {"state": state, "seconds": seconds, "rows_read": c.read, "rows_accepted": c.accepted,
                "rows_rejected": c.rejected, "transactions_published": c.published}
    finally:
        await publisher.stop()
        await pool.close()
