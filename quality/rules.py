"""Guardrail rules: one definition per rule, used by the silver step (per transaction) and by
the batch checks (issue: quality guardrails).

Example::

    violations = evaluate(tx, Thresholds.from_settings(settings), now=datetime.now(UTC))
    critical = [v for v in violations if v.rule.severity == "critical"]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from scout.contract import Transaction
from scout.settings import Settings

Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    description: str


NEGATIVE_AMOUNT = Rule("negative_amount", "critical", "total, unit price or line amount below zero")
NEGATIVE_QUANTITY = Rule("negative_quantity", "critical", "a line quantity below zero")
OVER_THRESHOLD = Rule("over_threshold", "critical", "total above the per-transaction threshold")
LINE_AMOUNT_MISMATCH = Rule("line_amount_mismatch", "critical", "line_amount differs from qty x unit_price")
LINE_SUM_MISMATCH = Rule("line_sum_mismatch", "critical", "line items do not sum to the total within tolerance")
FUTURE_TIMESTAMP = Rule("future_timestamp", "critical", "ts later than now plus the allowed clock skew")

RULES = (NEGATIVE_AMOUNT, NEGATIVE_QUANTITY, OVER_THRESHOLD, LINE_AMOUNT_MISMATCH, LINE_SUM_MISMATCH,
         FUTURE_TIMESTAMP)


@dataclass(frozen=True)
class Thresholds:
    max_transaction_amount: Decimal
    line_sum_tolerance: Decimal
    future_skew: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            max_transaction_amount=Decimal(settings.max_transaction_amount),
            line_sum_tolerance=Decimal(str(settings.line_sum_tolerance)),
            future_skew=timedelta(seconds=settings.future_skew_s),
        )


@dataclass(frozen=True)
class Violation:
    rule: Rule
    detail: str


def line_amount(qty: int, unit_price: Decimal, given: Decimal | None) -> Decimal:
    return given if given is not None else (unit_price * qty).quantize(Decimal("0.01"))


def evaluate(tx: Transaction, limits: Thresholds, *, now: datetime) -> list[Violation]:
    found: list[Violation] = []
    if tx.total_amount < 0 or any(i.unit_price < 0 or (i.line_amount or 0) < 0 for i in tx.items):
        found.append(Violation(NEGATIVE_AMOUNT, f"total_amount={tx.total_amount}"))
    negative_lines = [n for n, i in enumerate(tx.items, start=1) if i.qty < 0]
    if negative_lines:
        found.append(Violation(NEGATIVE_QUANTITY, f"lines {negative_lines}"))
    if tx.total_amount > limits.max_transaction_amount:
        found.append(Violation(OVER_THRESHOLD, f"{tx.total_amount} > {limits.max_transaction_amount}"))
    mismatched = [
        n for n, i in enumerate(tx.items, start=1)
        if i.line_amount is not None and i.line_amount != (i.unit_price * i.qty).quantize(Decimal("0.01"))
    ]
    if mismatched:
        found.append(Violation(LINE_AMOUNT_MISMATCH, f"lines {mismatched}"))
    line_sum = sum((line_amount(i.qty, i.unit_price, i.line_amount) for i in tx.items), Decimal(0))
    allowed = limits.line_sum_tolerance * abs(tx.total_amount)
    if abs(line_sum - tx.total_amount) > max(allowed, Decimal("0.01")):
        found.append(Violation(LINE_SUM_MISMATCH, f"lines sum to {line_sum}, total is {tx.total_amount}"))
    if tx.ts > now + limits.future_skew:
        found.append(Violation(FUTURE_TIMESTAMP, f"ts {tx.ts.isoformat()} is ahead of {now.isoformat()}"))
    return found
