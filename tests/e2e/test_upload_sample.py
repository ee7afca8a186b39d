"""`scout upload` of the real Online Retail II sample through `scout api` and `scout worker`: the exact number of
transactions in silver (computed here from the CSV with the documented rules), and a re-upload adds nothing."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.workers import api_process, worker_processes
from tests.factories import bearer
from tests.samples import RETAIL_SAMPLE

SAMPLE = RETAIL_SAMPLE
NON_PRODUCT = {"POST", "DOT", "ADJUST", "ADJUST2", "M", "D", "C2", "C3", "S", "B", "BANK CHARGES", "PADS",
               "AMAZONFEE", "CRUK"}
LIMIT = Decimal("10000")


def expected_invoices(path: Path) -> dict[str, tuple[Decimal, int]]:
    """Invoice -> (total, lines) under the README rules, from the whole file at once (no streaming, no window)."""
    lines: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            code, price = row["StockCode"].strip(), Decimal(row["Price"])
            if (row["Invoice"].startswith("C") or code.upper() in NON_PRODUCT
                    or code.upper().startswith(("TEST", "GIFT_")) or int(row["Quantity"]) <= 0 or price <= 0
                    or price != price.quantize(Decimal("0.01"))):
                continue
            lines[row["Invoice"]].add((code, row["Description"].strip(), row["Quantity"], str(price),
                                       row["InvoiceDate"], row["Country"]))
    return {inv: (sum((int(q) * Decimal(p) for _, _, q, p, _, _ in ls), Decimal(0)), len(ls))
            for inv, ls in lines.items() if len(ls) <= 500}


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    with api_process(settings) as (url, env, _):
        yield url, env


def _upload(url: str, env: dict[str, str], token: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", "upload", str(path), "--url", url],
                          env={**env, "SCOUT_API_TOKEN": token}, capture_output=True, text=True, timeout=600,
                          check=False)


def _counts(dsn: str) -> tuple[int, int, int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM silver.transactions), (SELECT count(*) FROM "
                           "silver.quarantine), (SELECT count(*) FROM bronze.transactions), (SELECT count(*) FROM "
                           "bronze.pending)").fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def test_sample_lands_in_silver_exactly_and_a_reupload_adds_nothing(
        api: tuple[str, dict[str, str]], settings: Settings, tmp_path: Path) -> None:
    url, env = api
    dsn = settings.database_dsn()
    token = bearer(dsn)["Authorization"].removeprefix("Bearer ")
    invoices = expected_invoices(SAMPLE)
    over = {inv for inv, (total, _) in invoices.items() if total > LIMIT}
    with worker_processes(settings):
        first = _upload(url, env, token, SAMPLE)
        assert first.returncode == 0, first.stderr
        job = orjson.loads(first.stdout)
        accepted = sum(n for _, n in invoices.values())
        assert (job["state"], job["rows_read"], job["transactions_published"], job["rows_accepted"]) == (
            "succeeded", 52_516, len(invoices), accepted)
        assert job["rows_duplicate"] == 534 and job["rows_rejected"] == 52_516 - 534 - accepted
        errors = httpx.get(f"{url}/v1/uploads/{job['id']}/errors.csv", headers={"Authorization": f"Bearer {token}"},
                           timeout=30).text
        reasons = Counter(row["reason"] for row in csv.DictReader(errors.splitlines()))
        assert reasons["cancellation"] == 1_206 and reasons["duplicate_line"] == 534  # the sample's README
        assert sum(reasons.values()) == job["rows_rejected"] + job["rows_duplicate"]
        done = eventually(lambda: _counts(dsn), until=lambda c: c[0] + c[1] == len(invoices) and c[3] == 0,
                          timeout=180, what="every invoice in silver or quarantine")
        assert done[:3] == (len(invoices) - len(over), len(over), len(invoices))
        with psycopg.connect(dsn) as conn:
            totals = dict(conn.execute("SELECT transaction_id, total_amount FROM silver.transactions "
                                       "WHERE transaction_id IN ('489434', '489436', '536365')").fetchall())
        assert {k: v[0] for k, v in invoices.items() if k in totals} == totals and "489434" in totals
        _assert_gold_by_hand(env, dsn)

        again = _upload(url, env, token, SAMPLE)
        assert again.returncode == 0, again.stderr
        sentinel = tmp_path / "sentinel.csv"
        countries = sorted(set(_countries(SAMPLE)))
        sentinel.write_text("Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n" + "".join(
            f"S{n},85048,SENTINEL,1,2010-02-01 10:00:00,1.00,,{c}\n" for n, c in enumerate(countries)))
        assert _upload(url, env, token, sentinel).returncode == 0
        after = eventually(lambda: _counts(dsn), until=lambda c: c[0] == done[0] + len(countries) and c[3] == 0,
                           timeout=120, what="sentinels in silver behind the re-upload")
        assert after == (done[0] + len(countries), done[1], done[2] + len(countries), 0)


# Store-days with one surviving invoice each, totalled by hand from the sample's rows (Europe/London = UTC in
# December and January, so the local invoice day is the UTC business day):
# - France 2009-12-07, invoice 490684: 4 x 4.95 + 16 x 1.69 + 6 x 2.10 + 36 x 0.42 = 19.80 + 27.04 + 12.60 + 15.12
#   = 74.56 (the same day's cancellation C490701 is rejected);
# - Sweden 2009-12-09, invoice 491059: 144 x 1.45 + 30 x 2.55 = 208.80 + 76.50 = 285.30 (C491036 rejected);
# - Sweden 2010-01-07, invoice 493806: 0.85 + 4.25 + 2.95 = 8.05 (its POSTAGE line, 18.00, is a non-product code).
GOLD_BY_HAND = {
    ("France", "2009-12-07"): (1, 4, Decimal("74.56")),
    ("Sweden", "2009-12-09"): (1, 2, Decimal("285.30")),
    ("Sweden", "2010-01-07"): (1, 3, Decimal("8.05")),
}


def _assert_gold_by_hand(env: dict[str, str], dsn: str) -> None:
    refresh = subprocess.run([sys.executable, "-m", "cli.main", "jobs", "run", "gold-refresh"], env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT store_id, day::text, orders, line_items, revenue FROM gold.sales_by_store_day "
                            "WHERE (store_id, day::text) IN (('France', '2009-12-07'), ('Sweden', '2009-12-09'), "
                            "('Sweden', '2010-01-07'))").fetchall()
    assert {(s, d): (o, n, r) for s, d, o, n, r in rows} == GOLD_BY_HAND


def _countries(path: Path) -> Iterator[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            yield row["Country"]


def test_sse_streams_progress_to_the_end_for_a_client_that_stops_reading(
        api: tuple[str, dict[str, str]], settings: Settings) -> None:
    url, _ = api
    auth = bearer(settings.database_dsn())
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
        with gzip.open(SAMPLE, "rb") as f:
            created = client.post("/v1/uploads", content=f.read(), headers={"Content-Type": "text/csv"})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        with client.stream("GET", f"/v1/uploads/{job_id}/events") as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = events.iter_lines()
            first = next(lines)
            # the client reads nothing more until the job is over: the server must neither buffer nor give up
            final = eventually(lambda: client.get(f"/v1/uploads/{job_id}").json(),
                               until=lambda job: job["state"] != "running", timeout=120, what="upload done")
            rest = [first, *lines]
    kinds = [ln.removeprefix("event: ") for ln in rest if ln.startswith("event: ")]
    data = [orjson.loads(ln.removeprefix("data: ")) for ln in rest if ln.startswith("data: ")]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and set(kinds[:-1]) <= {"progress"}
    assert data[-1] == final and final["state"] == "succeeded" and final["rows_read"] == 52_516
    assert [d["rows_read"] for d in data] == sorted(d["rows_read"] for d in data)
