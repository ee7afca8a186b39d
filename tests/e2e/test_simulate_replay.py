"""`scout simulate --replay` sends the real Online Retail II sample through `scout api` as device
transactions: every invoice the upload rules keep lands once, in silver or (over the basket limit) quarantine,
with the totals the CSV gives."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import psycopg

from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.test_upload_sample import LIMIT, SAMPLE, expected_invoices
from tests.e2e.workers import api_process, worker_processes
from tests.factories import cli_token


def test_the_sample_replays_through_the_api_into_silver(settings: Settings) -> None:
    invoices = expected_invoices(SAMPLE)
    over = {inv for inv, (total, _) in invoices.items() if total > LIMIT}
    with api_process(settings) as (url, env, _), worker_processes(settings):
        _, token = cli_token(env, "--name", "replay", "--all-stores", "--rate-limit", "100000")
        run = subprocess.run([sys.executable, "-m", "cli.main", "simulate", "--url", url, "--token", token,
                              "--replay", str(SAMPLE), "--rate", "2000", "--duration", "600", "--concurrency", "32"],
                             env=env, capture_output=True, text=True, timeout=900, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        out = " ".join(run.stdout.split())  # rich wraps long lines
        assert f"replaying {len(invoices)} invoice(s) from 52516 row(s)" in out
        assert f"sent {len(invoices)} transaction(s)" in out and f"status {{202: {len(invoices)}}}" in out

        def landed() -> tuple[int, int]:
            with psycopg.connect(env["SCOUT_DATABASE_URL"]) as conn:
                row = conn.execute("SELECT (SELECT count(*) FROM silver.transactions), "
                                   "(SELECT count(*) FROM silver.quarantine)").fetchone()
            assert row is not None
            return row[0], row[1]

        counts = eventually(landed, until=lambda c: sum(c) >= len(invoices), timeout=180,
                            what="every replayed invoice in silver or quarantine")
        assert counts == (len(invoices) - len(over), len(over))
        with psycopg.connect(env["SCOUT_DATABASE_URL"]) as conn:
            rows = conn.execute("SELECT transaction_id, total_amount, item_count, source FROM silver.transactions"
                                ).fetchall()
    silver = {tid: (total, items) for tid, total, items, _ in rows}
    assert silver == {inv: v for inv, v in invoices.items() if inv not in over}
    assert {source for *_, source in rows} == {"api"}
    assert sum(t for t, _ in silver.values()) == sum((t for inv, (t, _) in invoices.items() if inv not in over),
                                                     Decimal(0))
