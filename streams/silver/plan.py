"""Pure part of the silver step: turn claimed bronze rows into what to write (no I/O; SQL only as text).

Example::

    rows, written = split_claimed(records)    # the claim's rows: row-by-row ones, and those the set path wrote
    query = judge_sql(q("judge_set_path"), limits)   # the stream rules' batch SQL over what the set path wrote
    plan = build_plan(rows, limits)
    plan.transactions, plan.quarantined, plan.sku_products   # transactions carry their rule warnings
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from quality.rules import STREAM_RULES, Thresholds, Violation, batch_sql, evaluate, line_amount
from scout.contract import Transaction
from scout.db import q
from streams.silver.linking import Match, normalise_name


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    bronze_id: int
    event_hash: str
    source: str
    payload: str  # the canonical transaction, JSON text
    received_at: datetime
    store_id: str | None = None
    transaction_id: str | None = None
    kafka_partition: int = 0
    kafka_offset: int = 0

    @property
    def arrival(self) -> tuple[int, int]:
        """Where the event arrived: (partition, offset) orders the versions of one transaction (same key, same
        partition) as they were received."""
        return self.kafka_partition, self.kafka_offset


@dataclass(frozen=True, slots=True)
class SetWritten:
    """A transaction the set path wrote (claim_bronze), with its lines."""

    txn_id: int
    bronze_id: int
    latency: float  # silver processed_at - received_at, seconds
    lines: int
    sku_lines: int  # the others are linked through an alias or by a printed name silver linked before
    name_lines: int = 0  # silver.name_links, method name
    fuzzy_lines: int = 0  # silver.name_links, method fuzzy

    @property
    def alias_lines(self) -> int:
        return self.lines - self.sku_lines - self.name_lines - self.fuzzy_lines


def split_claimed(records: Iterable[Sequence[Any]]) -> tuple[list[ClaimedRow], list[SetWritten]]:
    """The claim's rows: those left to the row-by-row path (with their payloads, in arrival order) and those the
    set path wrote."""
    rows: list[ClaimedRow] = []
    written: list[SetWritten] = []
    for (bronze_id, event_hash, source, payload, received_at, store_id, transaction_id, partition, offset,
         txn_id, latency, lines, sku_lines, name_lines, fuzzy_lines) in records:
        if txn_id is None:
            rows.append(ClaimedRow(bronze_id, event_hash, source, payload, received_at, store_id, transaction_id,
                                   partition, offset))
        else:
            written.append(SetWritten(txn_id, bronze_id, latency, lines, sku_lines, name_lines, fuzzy_lines))
    rows.sort(key=lambda r: r.arrival)
    return rows, written


# The rules' batch SQL reads its quarantine part since {since}: never, here (only the transactions just written)
_NEVER = datetime.max.replace(tzinfo=UTC)
_SET_BATCH = "batch"  # judge_set_path's CTE: the transactions ``%(txn_ids)s``, read once


def judge_sql(template: str, limits: Thresholds) -> str:
    """``template`` (the judge_set_path query) with ``{rules}``: the union of every stream rule's own batch SQL
    (rule_<name> in quality.sql, warnings too) over the transactions ``%(txn_ids)s``, giving their keys; and
    ``{silver_with_line_facts}``: the quality suite's block that reads each transaction's lines once for every
    line rule."""
    rules = "\nUNION ALL\n".join(
        f"SELECT key FROM ({batch_sql(rule, limits, since=_NEVER).replace('{batch}', _SET_BATCH)}) AS {rule.name}"
        for rule in STREAM_RULES)
    return template.replace("{rules}", rules).replace("{silver_with_line_facts}", q("silver_with_line_facts"))


@dataclass(frozen=True, slots=True)
class PlannedLine:
    line_no: int
    product_id: str | None
    product_name: str | None
    name_norm: str | None  # set for lines without a product_id (linked by name)
    qty: int
    unit_price: Decimal
    line_amount: Decimal


@dataclass(frozen=True, slots=True)
class PlannedTransaction:
    row: ClaimedRow
    tx: Transaction
    lines: tuple[PlannedLine, ...]
    warnings: tuple[Violation, ...] = ()  # broken `warning` rules: the transaction lands, they are counted


@dataclass(frozen=True, slots=True)
class Quarantined:
    row: ClaimedRow
    store_id: str | None
    transaction_id: str | None
    reasons: tuple[str, ...]
    details: dict[str, Any]


@dataclass
class Plan:
    transactions: list[PlannedTransaction] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    # sku -> (name, name_norm, brand, category): products to create when unknown
    sku_products: dict[str, tuple[str, str, str | None, str | None]] = field(default_factory=dict)

    @property
    def store_ids(self) -> list[str]:
        return sorted({t.tx.store_id for t in self.transactions})

    @property
    def name_norms(self) -> list[str]:
        return sorted({ln.name_norm for t in self.transactions for ln in t.lines
                       if ln.product_id is None and ln.name_norm})

    def name_links(self, by_name: Mapping[str, Match]) -> list[tuple[str, str, int, str, Decimal]]:
        """Printed names (lines without a SKU) that linked, as rows of silver.name_links: (name, name_norm,
        product_key, method, confidence), so the set path links the next lines printing them in SQL."""
        links = {ln.product_name: (ln.name_norm, by_name[ln.name_norm]) for t in self.transactions
                 for ln in t.lines
                 if ln.product_id is None and ln.product_name and ln.name_norm and ln.name_norm in by_name}
        return [(name, norm, m.product_key, m.method, m.confidence)
                for name, (norm, m) in sorted(links.items()) if m.method in ("name", "fuzzy")]


def _lines(tx: Transaction) -> tuple[PlannedLine, ...]:
    """Numbered lines with their amounts; the normalised name only where linking needs it (no SKU)."""
    return tuple(
        PlannedLine(n, item.product_id, item.product_name,
                    normalise_name(item.product_name) if item.product_id is None and item.product_name else None,
                    item.qty, item.unit_price, line_amount(item.qty, item.unit_price, item.line_amount))
        for n, item in enumerate(tx.items, start=1)
    )


def build_plan(rows: list[ClaimedRow], limits: Thresholds) -> Plan:
    """Rules are judged against each row's receipt time, so a replay gets the same verdict."""
    plan = Plan()
    for row in rows:
        try:
            tx = Transaction.model_validate_json(row.payload)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            plan.quarantined.append(
                Quarantined(row, row.store_id, row.transaction_id,
                            ("invalid_payload",), {"errors": errors})
            )
            continue
        violations = evaluate(tx, limits, now=row.received_at)
        critical = [v for v in violations if v.severity == "critical"]
        if critical:
            plan.quarantined.append(
                Quarantined(row, tx.store_id, tx.transaction_id, tuple(v.rule.name for v in critical),
                            {v.rule.name: v.detail for v in critical})
            )
            continue
        for item in tx.items:
            if item.product_id is not None and item.product_id not in plan.sku_products:
                name = item.product_name or item.product_id
                plan.sku_products[item.product_id] = (name, normalise_name(name), item.brand, item.category)
        plan.transactions.append(PlannedTransaction(row, tx, _lines(tx), tuple(violations)))
    return plan
