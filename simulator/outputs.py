"""File outputs of the simulator: NDJSON of transactions or an invoice-style CSV (one row per line item).

Example::

    plan = FaultPlan.parse("bad_total=0.01", seed=42)
    with open("tx.ndjson", "wb") as out:
        counts = write_ndjson(out, Generator(42), plan, count=1000, records=None)
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import orjson

from scout.csv_cells import csv_writer
from simulator.faults import FaultPlan, FaultRecord, Sent
from simulator.source import TransactionSource

CSV_COLUMNS = ("invoice", "store_id", "ts", "device_id", "customer_segment", "payment_method", "currency",
               "invoice_total", "line_no", "product_id", "product_name", "brand", "category", "qty", "unit_price",
               "line_amount")


def planned(gen: TransactionSource, plan: FaultPlan, count: int, *, start_n: int = 0
            ) -> Iterator[tuple[int, list[Sent], FaultRecord | None]]:
    """Transactions ``start_n .. start_n+count-1`` with their faults applied."""
    for n in range(start_n, start_n + count):
        sent, record = plan.apply(n, gen.transaction(n), gen)
        yield n, sent, record


def write_records(out: IO[bytes] | None, record: FaultRecord | None) -> None:
    if out is not None and record is not None:
        out.write(record.to_json() + b"\n")


def write_ndjson(out: IO[bytes], gen: TransactionSource, plan: FaultPlan, *, count: int,
                 records: IO[bytes] | None = None) -> Counter[str]:
    """One request body a line (malformed bodies as they would be sent); returns counts by fault."""
    counts: Counter[str] = Counter()
    for _, sent, record in planned(gen, plan, count):
        for s in sent:
            out.write((s.body if isinstance(s.body, bytes) else orjson.dumps(s.body)) + b"\n")
            counts[s.fault or "clean"] += 1
        write_records(records, record)
    return counts


def _csv_rows(body: dict[str, Any]) -> Iterator[list[str]]:
    head = [str(body.get(k, "")) for k in ("transaction_id", "store_id", "ts", "device_id", "customer_segment",
                                           "payment_method", "currency", "total_amount")]
    for line_no, item in enumerate(body.get("items") or [], start=1):
        yield [*head, str(line_no), *(str(item.get(k, "")) for k in (
            "product_id", "product_name", "brand", "category", "qty", "unit_price", "line_amount"))]


def write_csv(out: IO[str], gen: TransactionSource, plan: FaultPlan, *, count: int,
              records: IO[bytes] | None = None) -> Counter[str]:
    """An invoice CSV (header + one row per line item); malformed JSON bodies have no CSV form and are skipped.
    Text that could start a spreadsheet formula is quoted (``scout.csv_cells``)."""
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    counts: Counter[str] = Counter()
    for _, sent, record in planned(gen, plan, count):
        for s in sent:
            if isinstance(s.body, bytes):
                counts["skipped"] += 1
                continue
            writer.writerows(_csv_rows(s.body))
            counts[s.fault or "clean"] += 1
        write_records(records, record)
    return counts


def read_csv_invoices(text: str) -> list[dict[str, Any]]:
    """Group an invoice CSV back into transactions (for checks and round trips)."""
    invoices: dict[tuple[str, str], dict[str, Any]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = (row["store_id"], row["invoice"])
        tx = invoices.setdefault(key, {"transaction_id": row["invoice"], "store_id": row["store_id"], "ts": row["ts"],
                                       "total_amount": row["invoice_total"], "items": []})
        tx["items"].append({k: row[k] for k in ("product_id", "product_name", "qty", "unit_price", "line_amount")})
    return list(invoices.values())
