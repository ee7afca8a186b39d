"""The pure silver plan: clean rows to transactions, rule breakers and bad payloads to quarantine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg.adapt import PyFormat, Transformer
from psycopg.types.json import Jsonb

from quality.rules import STREAM_RULES, Thresholds
from scout.db import q
from scout.settings import Settings
from streams.silver.linking import normalise_name
from streams.silver.plan import ClaimedRow, SetWritten, build_plan, judge_sql, split_claimed
from tests.unit.payloads import item, payload

NOW = datetime(2025, 1, 24, 19, 0, tzinfo=UTC)
LIMITS = Thresholds.from_settings(Settings())


def row(bronze_id: int, data: dict[str, Any]) -> ClaimedRow:
    return ClaimedRow(bronze_id, f"{bronze_id:064x}", "api", json.dumps(data), NOW, data.get("store_id"),
                      data.get("transaction_id"))


def test_routes_clean_breaking_and_invalid_rows() -> None:
    rows = [
        row(1, payload()),
        row(2, payload(transaction_id="TXN-2", total_amount="20000.00",
                       items=[item(qty=1, unit_price="20000.00", line_amount=None)])),
        row(3, payload(transaction_id="TXN-3", total_amount="1.005")),
        row(4, payload(transaction_id="TXN-4", store_id="STORE-002")),
    ]
    plan = build_plan(rows, LIMITS)
    assert [t.row.bronze_id for t in plan.transactions] == [1, 4]
    assert [(z.row.bronze_id, z.reasons) for z in plan.quarantined] == [
        (2, ("over_threshold",)),
        (3, ("invalid_payload",)),
    ]
    assert plan.store_ids == ["STORE-001", "STORE-002"]


def test_quarantine_lists_every_broken_rule() -> None:
    data = payload(total_amount="-50.00", items=[item(qty=-2, line_amount="-49.00")])
    (quarantined,) = build_plan([row(1, data)], LIMITS).quarantined
    assert set(quarantined.reasons) == {"negative_amount", "negative_quantity", "line_amount_mismatch",
                                        "line_sum_mismatch"}
    assert set(quarantined.details) == set(quarantined.reasons)
    assert (quarantined.store_id, quarantined.transaction_id) == ("STORE-001", "TXN-1")


def test_invalid_payload_keeps_ids_and_error_locations() -> None:
    data = payload(transaction_id="TXN-9", items=[])
    (quarantined,) = build_plan([row(9, data)], LIMITS).quarantined
    assert quarantined.reasons == ("invalid_payload",)
    assert (quarantined.store_id, quarantined.transaction_id) == ("STORE-001", "TXN-9")
    assert [e["loc"] for e in quarantined.details["errors"]] == [("items",)]


def test_invalid_payload_details_can_be_stored_as_jsonb() -> None:
    """The silver step writes ``details`` with psycopg's Jsonb, so it must be JSON-serialisable."""
    plan = build_plan([row(1, payload(total_amount="1.005"))], LIMITS)
    (quarantined,) = plan.quarantined
    dumper = Transformer().get_dumper(Jsonb(quarantined.details), PyFormat.BINARY)
    assert dumper.dump(Jsonb(quarantined.details))


def test_lines_are_numbered_with_computed_amounts() -> None:
    data = payload(total_amount="80.00", items=[item(), item(product_id=None, product_name="Chips 60g",
                                                             qty=3, unit_price="10.00", line_amount=None)])
    (planned,) = build_plan([row(1, data)], LIMITS).transactions
    assert [(ln.line_no, ln.product_id, ln.line_amount) for ln in planned.lines] == [
        (1, "SKU-1", Decimal("50.00")),
        (2, None, Decimal("30.00")),
    ]
    assert planned.lines[1].name_norm == "chips 60g"


def test_sku_products_collected_once_from_clean_rows() -> None:
    rows = [
        row(1, payload(items=[item(product_id="SKU-1", product_name="Cola 350ml", brand="Fizz",
                                   category="beverages")])),
        row(2, payload(transaction_id="TXN-2", items=[item(product_id="SKU-1", product_name="Other")])),
        row(3, payload(transaction_id="TXN-3", items=[item(product_id="SKU-2", product_name=None)])),
        row(4, payload(transaction_id="TXN-4", total_amount="-50.00",
                       items=[item(product_id="SKU-BAD", unit_price="-25.00", line_amount="-50.00")])),
    ]
    plan = build_plan(rows, LIMITS)
    assert plan.sku_products == {
        "SKU-1": ("Cola 350ml", "cola 350ml", "Fizz", "beverages"),
        "SKU-2": ("SKU-2", "sku 2", None, None),
    }


def test_name_norms_only_for_lines_without_sku() -> None:
    rows = [
        row(1, payload(total_amount="100.00", items=[
            item(product_id=None, product_name="  Coca-Cola  350ML "),
            item(product_id=None, product_name="Coca Cola 350ml"),
        ])),
        row(2, payload(transaction_id="TXN-2", items=[item(product_id="SKU-7", product_name="Ice Tea")])),
        row(3, payload(transaction_id="TXN-3", items=[item(product_id=None, product_name="Crème & Co")])),
    ]
    plan = build_plan(rows, LIMITS)
    assert plan.name_norms == ["coca cola 350ml", "creme and co"]


def test_normalise_name() -> None:
    assert normalise_name("  Coca-Cola  350ML ") == "coca cola 350ml"
    assert normalise_name("Café & Bar!") == "cafe and bar"
    assert normalise_name("---") == ""


def test_empty_batch() -> None:
    plan = build_plan([], LIMITS)
    assert (plan.transactions, plan.quarantined, plan.sku_products, plan.name_norms) == ([], [], {}, [])


def test_the_claim_splits_what_the_set_path_wrote_from_rows_left_to_python_in_arrival_order() -> None:
    left = (7, "b" * 64, "api", "{}", NOW, "S", "T2", 1, 30, None, None, None, None, None, None)
    earlier = (9, "c" * 64, "api", "{}", NOW, "S", "T3", 0, 40, None, None, None, None, None, None)
    written = (8, "a" * 64, "api", None, NOW, "S", "T1", 1, 31, 501, 0.25, 5, 2, 1, 1)
    rows, done = split_claimed([left, written, earlier])
    assert [r.bronze_id for r in rows] == [9, 7]  # (partition, offset) order
    assert done == [SetWritten(501, 8, 0.25, 5, 2, 1, 1)] and done[0].alias_lines == 1


def test_the_set_path_is_judged_by_every_stream_rules_own_batch_sql() -> None:
    sql = judge_sql(q("judge_set_path"), LIMITS)
    assert "{" not in sql and "}" not in sql
    for rule in STREAM_RULES:
        rule_sql = q(rule.query_name()).split("UNION ALL")[0].replace("{batch}", "batch")
        assert rule_sql.format(max_transaction_amount=LIMITS.max_transaction_amount,
                               line_sum_tolerance=LIMITS.line_sum_tolerance,
                               future_skew_s=int(LIMITS.future_skew.total_seconds())) in sql, rule.name
    assert sql.count("'9999-12-31T23:59:59.999999+00:00'::timestamptz") == len(STREAM_RULES)  # no quarantine rows


def test_the_judge_reads_each_transactions_lines_once_for_every_line_rule() -> None:
    sql = judge_sql(q("judge_set_path"), LIMITS)
    assert sql.count("silver.line_items") == 1  # in the batch (silver_with_line_facts), not once per rule
    assert "WITH batch AS MATERIALIZED (" + q("silver_with_line_facts") in sql
