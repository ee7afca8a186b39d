"""File outputs of the simulator: NDJSON bodies and the invoice CSV hold the planned transactions and faults."""

from __future__ import annotations

import io
from decimal import Decimal

import orjson
from typer.testing import CliRunner

from cli.main import app
from scout.contract import Transaction
from simulator.faults import FaultPlan
from simulator.generator import Generator
from simulator.outputs import read_csv_invoices, write_csv, write_ndjson


def test_ndjson_holds_every_body_and_records_every_fault() -> None:
    plan = FaultPlan.parse("exact_resend=0.2,malformed_json=0.1,bad_total=0.1", seed=9)
    out, records = io.BytesIO(), io.BytesIO()
    counts = write_ndjson(out, Generator(9), plan, count=200, records=records)
    lines = out.getvalue().splitlines()
    faults = [orjson.loads(r) for r in records.getvalue().splitlines()]
    kinds = {f["kind"] for f in faults}
    assert kinds == {"exact_resend", "malformed_json", "bad_total"}
    resends = sum(1 for f in faults if f["kind"] == "exact_resend")
    assert len(lines) == 200 + resends == sum(counts.values())
    malformed = 0
    for line in lines:
        try:
            Transaction.model_validate_json(line)
        except ValueError:
            malformed += 1
    assert malformed == sum(1 for f in faults if f["kind"] == "malformed_json") > 0


def test_ndjson_is_the_same_for_one_seed() -> None:
    plan = FaultPlan.parse("all=0.05", seed=4)
    first, second = io.BytesIO(), io.BytesIO()
    write_ndjson(first, Generator(4), plan, count=100)
    write_ndjson(second, Generator(4), FaultPlan.parse("all=0.05", seed=4), count=100)
    assert first.getvalue() == second.getvalue()


def test_invoice_csv_round_trips_to_the_generated_transactions() -> None:
    gen = Generator(11)
    text = io.StringIO()
    counts = write_csv(text, gen, FaultPlan({}, seed=11), count=50)
    invoices = read_csv_invoices(text.getvalue())
    assert counts == {"clean": 50} and len(invoices) == 50
    for n, tx in enumerate(invoices):
        original = gen.transaction(n)
        assert (tx["transaction_id"], tx["store_id"]) == (original["transaction_id"], original["store_id"])
        assert Decimal(tx["total_amount"]) == sum(Decimal(i["line_amount"]) for i in tx["items"])
        assert [i["product_id"] for i in tx["items"]] == [i["product_id"] for i in original["items"]]


def test_invoice_csv_skips_malformed_bodies_but_records_them() -> None:
    text, records = io.StringIO(), io.BytesIO()
    counts = write_csv(text, Generator(2), FaultPlan({"malformed_json": 1.0}, seed=2), count=10, records=records)
    assert counts == {"skipped": 10}
    assert text.getvalue().strip().count("\n") == 0  # the header alone
    assert len(records.getvalue().splitlines()) == 10


def test_simulate_command_writes_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, records = tmp_path / "tx.ndjson", tmp_path / "faults.jsonl"
    result = CliRunner().invoke(app, ["simulate", "--rate", "50", "--duration", "2", "--seed", "3",
                                      "--faults", "missing_field=0.5", "--out-ndjson", str(out),
                                      "--records", str(records)])
    assert result.exit_code == 0, result.output
    assert len(out.read_bytes().splitlines()) == 100
    assert 20 < len(records.read_bytes().splitlines()) < 80
    bad = CliRunner().invoke(app, ["simulate", "--faults", "nonsense=0.1", "--out-ndjson", str(out)])
    assert bad.exit_code == 2
