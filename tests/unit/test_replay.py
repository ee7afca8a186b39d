"""Replaying the real Online Retail II sample as transactions: the upload's rules, real invoices, shifted time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from scout.contract import Transaction
from scout.invoice_mapping import UploadFormatError
from simulator.faults import FaultPlan
from simulator.poison import poison_messages
from simulator.replay import Replay
from tests.samples import RETAIL_SAMPLE

SAMPLE = RETAIL_SAMPLE


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay.load(SAMPLE)


def test_the_sample_replays_as_the_upload_maps_it(replay: Replay) -> None:
    assert replay.rows == 52_516
    assert replay.left_out["cancellation"] == 1_206 and replay.left_out["duplicate_line"] == 534  # its README
    first = replay.transaction(0)
    assert first["transaction_id"] == "489434" and first["store_id"] == "United Kingdom"
    assert first["ts"] == "2009-12-01T07:45:00Z" and len(first["items"]) == 8
    assert Decimal(first["total_amount"]) == sum(Decimal(i["line_amount"]) for i in first["items"])
    for n in range(0, len(replay), 97):
        Transaction.model_validate(replay.transaction(n))  # every body is a valid request


def test_a_replayed_body_is_a_fresh_copy(replay: Replay) -> None:
    body = replay.transaction(3)
    body["items"][0]["qty"] = -1
    assert replay.transaction(3)["items"][0]["qty"] != -1


def test_shift_to_now_keeps_the_gaps(tmp_path: Path) -> None:
    csv = tmp_path / "two.csv"
    csv.write_text("Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
                   "1,A1,ONE,1,2010-06-01 10:00:00,1.00,,France\n2,A2,TWO,2,2010-06-02 12:30:00,2.50,,Spain\n")
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    shifted = Replay.load(csv, shift_to=now)
    times = [datetime.fromisoformat(shifted.transaction(n)["ts"]) for n in range(2)]
    assert times[1] == now and times[1] - times[0] == timedelta(hours=26, minutes=30)
    with pytest.raises(ValueError, match="timezone-aware"):
        Replay.load(csv, shift_to=datetime(2026, 1, 1))  # noqa: DTZ001 - the naive time is the point


def test_a_file_in_another_layout_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("id,amount\n1,2\n")
    with pytest.raises(UploadFormatError, match="Invoice"):
        Replay.load(other)


def test_faults_apply_to_replayed_invoices(replay: Replay) -> None:
    plan = FaultPlan.parse("all=0.1", seed=3)
    kinds = set()
    for n in range(200):
        sent, record = plan.apply(n, replay.transaction(n), replay)
        if record is not None:
            kinds.add(record.kind)
            assert record.transaction_id == replay.transaction(n)["transaction_id"]
        assert sent
    assert len(kinds) == 10


def test_poison_keys_are_unique_and_cover_every_kind() -> None:
    messages = poison_messages(seed=7, count=9)
    assert len({k for k, _ in messages}) == 9
    assert {k.decode().rsplit(":", 1)[1] for k, _ in messages} == {"not_json", "unsupported_schema", "not_an_object"}
