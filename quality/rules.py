"""Guardrail rules: one definition per rule, carrying its in-stream predicate and its batch SQL.

Each ``Rule`` has a name, a default severity (overridable with ``SCOUT_QUALITY_SEVERITIES``), a Python
predicate used by the silver step on every transaction (``stream``; ``None`` for batch-only rules), and a
batch check: the named query ``rule_<name>`` in ``sql/queries/quality.sql``, run by the Great Expectations
suites as an unexpected-rows query over ``{batch}``. ``tests/integration/test_quality_rules.py`` feeds the
same transactions to both and requires the same verdicts, so the two cannot drift apart.

Example::

    limits = Thresholds.from_settings(settings)
    violations = evaluate(tx, limits, now=received_at)
    critical = [v for v in violations if v.severity == "critical"]
    query = batch_sql(OVER_THRESHOLD, limits, since=window_start)   # SQL with a {batch} placeholder
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from psycopg import sql

from scout.contract import LineItem, Transaction
from scout.db import q
from scout.settings import Settings

Severity = Literal["critical", "warning"]
Suite = Literal["silver", "gold"]
# Which table the batch check's {batch} stands for (see quality/suites.py). silver_recent_lines: the recent
# window with the facts of each transaction's lines (quality.sql, silver_with_line_facts), for the line rules;
# the other silver rules keep the plain window, whose txn_id the planner can join by index.
Batch = Literal["silver_recent", "silver_recent_lines", "quarantine_recent", "gold_refresh_state", "gold_view"]
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Thresholds:
    """Every configurable number of the rules, and the effective severity of each rule."""

    max_transaction_amount: Decimal
    line_sum_tolerance: Decimal
    future_skew: timedelta
    link_coverage_min: Decimal = Decimal("0.95")
    fuzzy_link_share_max: Decimal = Decimal("0.2")
    min_lines: int = 100
    gold_max_staleness: timedelta = timedelta(seconds=300)
    severities: Mapping[str, Severity] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        unknown = sorted(set(settings.quality_severities) - set(RULES_BY_NAME))
        if unknown:
            raise ValueError(f"SCOUT_QUALITY_SEVERITIES names unknown rules {unknown}; "
                             f"known: {', '.join(RULES_BY_NAME)}")
        return cls(  # the amounts and shares are Decimals already bounded by Settings
            max_transaction_amount=settings.max_transaction_amount,
            line_sum_tolerance=settings.line_sum_tolerance,
            future_skew=timedelta(seconds=settings.future_skew_s),
            link_coverage_min=settings.link_coverage_min,
            fuzzy_link_share_max=settings.fuzzy_link_share_max,
            min_lines=settings.quality_min_lines,
            gold_max_staleness=timedelta(seconds=settings.gold_max_staleness_s),
            severities=dict(settings.quality_severities),
        )

    def severity(self, rule: Rule) -> Severity:
        return self.severities.get(rule.name, rule.severity)


StreamCheck = Callable[[Transaction, Thresholds, datetime], "str | None"]


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity  # the default
    description: str
    suite: Suite
    batch: Batch
    stream: StreamCheck | None = None  # None: checked in batch only
    subjects: tuple[str, ...] = ()  # one check per subject (e.g. per gold view); () = one check
    aggregate: bool = False  # the batch query returns one summary row, not one row per failing key

    def query_name(self, subject: str = "") -> str:
        return f"rule_{self.name}" + (f"_{subject.rsplit('.', 1)[-1]}" if subject else "")


@dataclass(frozen=True)
class Violation:
    rule: Rule
    detail: str
    severity: Severity


def line_amount(qty: int, unit_price: Decimal, given: Decimal | None) -> Decimal:
    """The line's amount: as given, else qty x unit price (what silver stores)."""
    return given if given is not None else (unit_price * qty).quantize(CENT)


def _amount(item: LineItem) -> Decimal:
    return line_amount(item.qty, item.unit_price, item.line_amount)


def _lines(tx: Transaction, broken: Callable[[LineItem], bool]) -> list[int]:
    return [n for n, item in enumerate(tx.items, start=1) if broken(item)]


# --- in-stream predicates: return a detail when the transaction breaks the rule -------------------------


def _negative_amount(tx: Transaction, _: Thresholds, __: datetime) -> str | None:
    lines = _lines(tx, lambda i: i.unit_price < 0 or _amount(i) < 0)
    if tx.total_amount < 0 or lines:
        return f"total_amount={tx.total_amount}, lines {lines}"
    return None


def _negative_quantity(tx: Transaction, _: Thresholds, __: datetime) -> str | None:
    lines = _lines(tx, lambda i: i.qty < 0)
    return f"lines {lines}" if lines else None


def _over_threshold(tx: Transaction, limits: Thresholds, _: datetime) -> str | None:
    if tx.total_amount > limits.max_transaction_amount:
        return f"{tx.total_amount} > {limits.max_transaction_amount}"
    return None


def _line_amount_mismatch(tx: Transaction, _: Thresholds, __: datetime) -> str | None:
    lines = _lines(tx, lambda i: i.line_amount is not None and i.line_amount != (i.unit_price * i.qty).quantize(CENT))
    return f"lines {lines}" if lines else None


def _line_sum_mismatch(tx: Transaction, limits: Thresholds, _: datetime) -> str | None:
    line_sum = sum((_amount(i) for i in tx.items), Decimal(0))
    allowed = max(limits.line_sum_tolerance * abs(tx.total_amount), CENT)
    if abs(line_sum - tx.total_amount) > allowed:
        return f"lines sum to {line_sum}, total is {tx.total_amount}"
    return None


def _future_timestamp(tx: Transaction, limits: Thresholds, now: datetime) -> str | None:
    if tx.ts > now + limits.future_skew:
        return f"ts {tx.ts.isoformat()} is ahead of {now.isoformat()}"
    return None


# --- the rules -------------------------------------------------------------------------------------

NEGATIVE_AMOUNT = Rule("negative_amount", "critical", "total, unit price or line amount below zero",
                       "silver", "silver_recent_lines", _negative_amount)
NEGATIVE_QUANTITY = Rule("negative_quantity", "critical", "a line quantity below zero",
                         "silver", "silver_recent_lines", _negative_quantity)
OVER_THRESHOLD = Rule("over_threshold", "critical", "total above the per-transaction threshold",
                      "silver", "silver_recent", _over_threshold)
LINE_AMOUNT_MISMATCH = Rule("line_amount_mismatch", "critical", "line_amount differs from qty x unit_price",
                            "silver", "silver_recent_lines", _line_amount_mismatch)
LINE_SUM_MISMATCH = Rule("line_sum_mismatch", "critical", "line items do not sum to the total within tolerance",
                         "silver", "silver_recent_lines", _line_sum_mismatch)
FUTURE_TIMESTAMP = Rule("future_timestamp", "critical", "ts later than its receipt time plus the allowed skew",
                        "silver", "silver_recent", _future_timestamp)
CONFLICTING_DUPLICATE = Rule("conflicting_duplicate", "critical",
                             "a (store_id, transaction_id) sent again with other content", "silver",
                             "quarantine_recent")
INVALID_PAYLOAD = Rule("invalid_payload", "critical", "a bronze payload that breaks the contract",
                       "silver", "quarantine_recent")
PROCESSING_ERROR = Rule("processing_error", "critical", "a row the database refused", "silver",
                        "quarantine_recent")
LINK_COVERAGE = Rule("link_coverage", "warning", "share of recent line items linked to a product below the minimum",
                     "silver", "silver_recent", aggregate=True)
FUZZY_LINK_SHARE = Rule("fuzzy_link_share", "warning", "share of recent line items linked by fuzzy match too high",
                        "silver", "silver_recent", aggregate=True)
UNKNOWN_PRODUCT = Rule("unknown_product", "critical", "a recent line item links to a product key with no product",
                       "silver", "silver_recent", aggregate=True)  # what the dropped foreign key guarded
ORPHAN_ROWS = Rule("orphan_rows", "critical",
                   "a recent line item without its transaction, or transaction without its store",
                   "silver", "silver_recent", aggregate=True)  # what the foreign keys dropped in 0024 guarded
GOLD_TOTALS = Rule("gold_totals", "critical", "a current gold view disagrees with silver", "gold", "gold_view",
                   subjects=("gold.sales_by_store_day",))
GOLD_FRESHNESS = Rule("gold_freshness", "warning", "a gold view has lagged behind silver for too long", "gold",
                      "gold_refresh_state")

RULES: tuple[Rule, ...] = (
    NEGATIVE_AMOUNT, NEGATIVE_QUANTITY, OVER_THRESHOLD, LINE_AMOUNT_MISMATCH, LINE_SUM_MISMATCH, FUTURE_TIMESTAMP,
    CONFLICTING_DUPLICATE, INVALID_PAYLOAD, PROCESSING_ERROR, LINK_COVERAGE, FUZZY_LINK_SHARE, UNKNOWN_PRODUCT,
    ORPHAN_ROWS,
    GOLD_TOTALS, GOLD_FRESHNESS,
)
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
STREAM_RULES: tuple[Rule, ...] = tuple(rule for rule in RULES if rule.stream is not None)


def evaluate(tx: Transaction, limits: Thresholds, *, now: datetime) -> list[Violation]:
    """Every stream rule ``tx`` breaks; ``now`` is the reference time (silver passes the receipt time)."""
    found: list[Violation] = []
    for rule in STREAM_RULES:
        assert rule.stream is not None
        detail = rule.stream(tx, limits, now)
        if detail is not None:
            found.append(Violation(rule, detail, limits.severity(rule)))
    return found


def _since_literal(since: datetime) -> str:
    return f"'{since.astimezone(UTC).isoformat()}'::timestamptz"


def _sql_params(limits: Thresholds, since: datetime) -> dict[str, str]:
    """Threshold literals for the batch SQL (numbers and one timestamp, never user text)."""
    return {
        "batch": "{batch}",  # left for Great Expectations to fill
        "since": _since_literal(since),
        "max_transaction_amount": str(limits.max_transaction_amount),
        "line_sum_tolerance": str(limits.line_sum_tolerance),
        "future_skew_s": str(int(limits.future_skew.total_seconds())),
        "link_coverage_min": str(limits.link_coverage_min),
        "fuzzy_link_share_max": str(limits.fuzzy_link_share_max),
        "min_lines": str(limits.min_lines),
        "gold_max_staleness_s": str(int(limits.gold_max_staleness.total_seconds())),
    }


def batch_sql(rule: Rule, limits: Thresholds, *, since: datetime, subject: str = "") -> str:
    """The rule's unexpected-rows query with its thresholds filled in and ``{batch}`` left for GX."""
    return q(rule.query_name(subject)).format(**_sql_params(limits, since))


def batch_source_sql(batch: Batch, *, since: datetime, subject: str = "") -> str:
    """The query behind a batch: a recent window of silver or the quarantine, the gold refresh state, or the
    gold view ``subject`` (``gold.name``)."""
    if batch == "gold_view":
        return q("batch_gold_view").format(view=sql.Identifier(*subject.split(".", 1)).as_string(None))
    return q(f"batch_{batch}").format(since=_since_literal(since), silver_with_line_facts=q("silver_with_line_facts"))
