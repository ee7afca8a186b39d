"""Guardrail rules of quality/rules.py: each fires on a breaking transaction and not on a clean one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from quality.rules import RULES, STREAM_RULES, Thresholds, evaluate
from scout.contract import Transaction
from scout.settings import Settings
from tests.unit.payloads import item, payload

NOW = datetime(2025, 1, 24, 18, 30, tzinfo=UTC)
LIMITS = Thresholds.from_settings(Settings())


def fired(data: dict, limits: Thresholds = LIMITS, now: datetime = NOW) -> list[str]:
    return [v.rule.name for v in evaluate(Transaction.model_validate(data), limits, now=now)]


def test_defaults_from_settings() -> None:
    assert LIMITS.max_transaction_amount == Decimal("10000")
    assert LIMITS.line_sum_tolerance == Decimal("0.01")
    assert LIMITS.future_skew == timedelta(seconds=300)


def test_stream_rules_are_critical_by_default_and_named_uniquely() -> None:
    assert len({rule.name for rule in RULES}) == len(RULES)
    assert [rule.name for rule in STREAM_RULES] == ["negative_amount", "negative_quantity", "over_threshold",
                                                     "line_amount_mismatch", "line_sum_mismatch", "future_timestamp"]
    assert {rule.severity for rule in STREAM_RULES} == {"critical"}


def test_severity_follows_settings_and_unknown_rules_are_refused() -> None:
    limits = Thresholds.from_settings(Settings(quality_severities={"over_threshold": "warning"}))
    data = payload(total_amount="20000.00", items=[item(qty=1, unit_price="20000.00", line_amount=None)])
    (violation,) = evaluate(Transaction.model_validate(data), limits, now=NOW)
    assert (violation.rule.name, violation.severity) == ("over_threshold", "warning")
    with pytest.raises(ValueError, match="unknown rules"):
        Thresholds.from_settings(Settings(quality_severities={"no_such_rule": "warning"}))


def test_a_computed_negative_line_amount_is_a_negative_amount() -> None:
    data = payload(total_amount="-50.00", items=[item(qty=-2, line_amount=None)])
    assert set(fired(data)) == {"negative_amount", "negative_quantity"}


def test_clean_transaction_breaks_nothing() -> None:
    assert fired(payload()) == []
    assert fired(payload(items=[item(line_amount=None)])) == []


@pytest.mark.parametrize(
    "data",
    [
        payload(total_amount="-50.00", items=[item(unit_price="-25.00", line_amount="-50.00")]),
        payload(items=[item(unit_price="-25.00", line_amount="-50.00"), item(unit_price="50.00",
                                                                            line_amount="100.00")]),
    ],
)
def test_negative_amount(data: dict) -> None:
    assert "negative_amount" in fired(data)


def test_negative_line_amount_alone() -> None:
    data = payload(total_amount="0.00", items=[item(qty=0, unit_price="0.00", line_amount="-0.01")])
    assert "negative_amount" in fired(data)


def test_negative_quantity() -> None:
    data = payload(total_amount="-50.00", items=[item(qty=-2, line_amount="-50.00")])
    names = fired(data)
    assert "negative_quantity" in names
    assert "line_amount_mismatch" not in names
    assert "negative_quantity" not in fired(payload(items=[item(qty=0, line_amount="0.00")], total_amount="0"))


@pytest.mark.parametrize(("total", "over"), [("10000.00", False), ("10000.01", True), ("250000", True)])
def test_over_threshold_default(total: str, over: bool) -> None:
    data = payload(total_amount=total, items=[item(qty=1, unit_price=total, line_amount=None)])
    assert ("over_threshold" in fired(data)) is over
    assert fired(data) == (["over_threshold"] if over else [])


def test_over_threshold_follows_settings() -> None:
    limits = Thresholds.from_settings(Settings(max_transaction_amount="40"))
    assert fired(payload(), limits) == ["over_threshold"]


def test_line_amount_mismatch() -> None:
    data = payload(items=[item(qty=2, unit_price="25.00", line_amount="49.99")])
    assert "line_amount_mismatch" in fired(data)
    assert "line_amount_mismatch" not in fired(payload(items=[item(line_amount=None)]))


@pytest.mark.parametrize(
    ("lines_sum", "mismatch"),
    [
        ("100.00", False),
        ("101.00", False),  # exactly 1% of 100.00 is allowed
        ("99.00", False),
        ("101.01", True),
        ("98.99", True),
    ],
)
def test_line_sum_tolerance_edges(lines_sum: str, mismatch: bool) -> None:
    data = payload(total_amount="100.00", items=[item(qty=1, unit_price=lines_sum, line_amount=None)])
    assert ("line_sum_mismatch" in fired(data)) is mismatch


@pytest.mark.parametrize(("lines_sum", "mismatch"), [("1.01", False), ("1.02", True), ("0.99", False)])
def test_line_sum_allows_one_cent_on_small_totals(lines_sum: str, mismatch: bool) -> None:
    data = payload(total_amount="1.00", items=[item(qty=1, unit_price=lines_sum, line_amount=None)])
    assert ("line_sum_mismatch" in fired(data)) is mismatch


def test_line_sum_uses_given_line_amounts() -> None:
    data = payload(total_amount="100.00", items=[item(qty=2, unit_price="25.00", line_amount="50.00")] * 2)
    assert fired(data) == []
    assert fired(payload(total_amount="150.00", items=data["items"])) == ["line_sum_mismatch"]


@pytest.mark.parametrize(
    ("ahead", "future"),
    [(timedelta(0), False), (timedelta(seconds=300), False), (timedelta(seconds=301), True),
     (timedelta(days=-30), False)],
)
def test_future_timestamp_with_skew(ahead: timedelta, future: bool) -> None:
    data = payload(ts=(NOW + ahead).isoformat())
    assert ("future_timestamp" in fired(data)) is future


def test_future_skew_follows_settings() -> None:
    limits = Thresholds.from_settings(Settings(future_skew_s=0))
    data = payload(ts=(NOW + timedelta(seconds=1)).isoformat())
    assert fired(data, limits) == ["future_timestamp"]
    assert fired(data) == []
