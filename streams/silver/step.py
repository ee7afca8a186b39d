"""The silver step: claim bronze rows (their bronze.pending entries deleted, FOR UPDATE SKIP LOCKED),
validate, link, write silver, quarantine what breaks critical rules, all in one database transaction.

Two paths share the transaction. The set path: the claim statement itself writes the plain rows (canonical
payloads whose SKUs silver knows) as transactions and line items, and the stream rules' batch SQL judges them;
what breaks a rule is taken out again. The row-by-row path: everything else (and what the rules took out) is
validated by pydantic, judged by the Python rules, linked and written as before, so quarantine reasons, their
details and warnings keep the words of the Python verdict.

Example::

    async with pool.connection() as conn:
        result = await drain_once(conn, limit=2000, limits=limits)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from quality.rules import Thresholds
from scout.db import q
from scout.errors import classify
from streams.silver.linking import CONFIDENCE, Catalogue, LinkMethod, Match
from streams.silver.plan import (
    ClaimedRow,
    Plan,
    PlannedTransaction,
    Quarantined,
    SetWritten,
    build_plan,
    judge_sql,
    split_claimed,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    claimed: int
    inserted: int
    quarantined: int
    already_present: int
    line_items: int
    warnings: Mapping[str, int] = field(default_factory=dict)  # rule -> transactions that landed with it
    link_methods: Mapping[str, int] = field(default_factory=dict)  # link method -> line items written
    quarantine_reasons: Mapping[str, int] = field(default_factory=dict)  # reason -> transactions quarantined
    latencies: tuple[float, ...] = ()  # per inserted transaction: silver processed_at - received_at, seconds
    set_path: int = 0  # of the inserted: written by the set path (the others row by row)

    def __add__(self, other: StepResult) -> StepResult:
        return StepResult(self.claimed + other.claimed, self.inserted + other.inserted,
                          self.quarantined + other.quarantined, self.already_present + other.already_present,
                          self.line_items + other.line_items, Counter(self.warnings) + Counter(other.warnings),
                          Counter(self.link_methods) + Counter(other.link_methods),
                          Counter(self.quarantine_reasons) + Counter(other.quarantine_reasons),
                          self.latencies + other.latencies, self.set_path + other.set_path)


async def _claim(conn: AsyncConnection, limit: int, *, set_path: bool) -> tuple[list[ClaimedRow], list[SetWritten]]:
    """Take up to ``limit`` queued rows off bronze.pending (SKIP LOCKED), write the plain ones (``set_path``);
    the others in arrival order, with their payloads."""
    async with conn.cursor() as cur:
        await cur.execute(q("claim_bronze"), {"limit": limit, "set_path": set_path})
        return split_claimed(await cur.fetchall())


async def _judge(conn: AsyncConnection, written: list[SetWritten],
                 limits: Thresholds) -> tuple[list[SetWritten], list[ClaimedRow]]:
    """What the set path wrote, judged by the stream rules' batch SQL: those that stay, and those taken out
    again for the row-by-row path."""
    if not written:
        return written, []
    cur = await conn.execute(judge_sql(q("judge_set_path"), limits), {"txn_ids": [w.txn_id for w in written]})
    records = await cur.fetchall()
    flagged = {int(r[0]) for r in records}
    return [w for w in written if w.txn_id not in flagged], [ClaimedRow(*r[1:]) for r in records]


def _set_result(claimed: int, written: list[SetWritten]) -> StepResult:
    methods = {"sku": sum(w.sku_lines for w in written), "alias": sum(w.alias_lines for w in written),
               "name": sum(w.name_lines for w in written), "fuzzy": sum(w.fuzzy_lines for w in written)}
    return StepResult(claimed, len(written), 0, 0, sum(w.lines for w in written),
                      link_methods={m: n for m, n in methods.items() if n},
                      latencies=tuple(w.latency for w in written), set_path=len(written))


async def _known_skus(conn: AsyncConnection, skus: list[str]) -> dict[str, Match]:
    cur = await conn.execute(q("known_skus"), {"skus": skus})
    return {sku: Match(key, method, Decimal(confidence)) for sku, key, method, confidence in await cur.fetchall()}


async def _new_skus(conn: AsyncConnection, plan: Plan, skus: list[str],
                    catalogue: Catalogue | None) -> dict[str, Match]:
    """Unknown SKUs: one whose name links to a product (exactly in PostgreSQL, or by the catalogue) becomes
    that product's alias; the others become products, as before. Decided under a lock per SKU."""
    await conn.execute(q("lock_new_skus"), {"skus": skus})
    known = await _known_skus(conn, skus)  # another worker may have decided while we waited
    skus = [s for s in skus if s not in known]
    named = [s for s in skus if plan.sku_products[s][0] != s]  # a line without a name only has its SKU
    by_norm: dict[str, Match] = {}
    if catalogue is not None and named:
        cur = await conn.execute(q("products_by_name"), {"norms": sorted({plan.sku_products[s][1] for s in named})})
        by_norm = {norm: Match(key, "name", CONFIDENCE["name"]) for norm, key in await cur.fetchall()}
    aliases = {s: m for s in named if catalogue is not None
               and (m := by_norm.get(plan.sku_products[s][1]) or catalogue.match(plan.sku_products[s][1]))}
    if aliases:
        await conn.execute(q("insert_product_aliases"), {
            "skus": list(aliases), "keys": [m.product_key for m in aliases.values()],
            "names": [plan.sku_products[s][0] for s in aliases], "methods": [m.method for m in aliases.values()],
            "confidences": [m.confidence for m in aliases.values()]})
    new = [s for s in skus if s not in aliases]
    if new:
        cols = list(zip(*(plan.sku_products[s] for s in new), strict=True))
        await conn.execute(
            q("upsert_products_by_sku"),
            {"skus": new, "names": list(cols[0]), "norms": list(cols[1]), "brands": list(cols[2]),
             "categories": list(cols[3])},
        )
    return known | await _known_skus(conn, skus)


async def _product_keys(conn: AsyncConnection, plan: Plan,
                        catalogue: Catalogue | None) -> tuple[dict[str, Match], dict[str, Match]]:
    by_sku: dict[str, Match] = {}
    if plan.sku_products:
        skus = sorted(plan.sku_products)
        by_sku = await _known_skus(conn, skus)
        unknown = [s for s in skus if s not in by_sku]
        if unknown:
            by_sku.update(await _new_skus(conn, plan, unknown, catalogue))
    by_name: dict[str, Match] = {}
    if plan.name_norms:
        cur = await conn.execute(q("products_by_name"), {"norms": plan.name_norms})
        by_name = {norm: Match(key, "name", CONFIDENCE["name"]) for norm, key in await cur.fetchall()}
        if catalogue is not None:
            for norm in plan.name_norms:
                if norm not in by_name and (match := catalogue.match(norm)) is not None:
                    by_name[norm] = match
    return by_sku, by_name


async def _insert(conn: AsyncConnection, txns: list[PlannedTransaction], latencies: list[float]) -> dict[str, int]:
    """COPY into the session's stage, then one INSERT ... ON CONFLICT DO NOTHING; event_hash -> txn_id of
    the rows inserted (the first received wins among versions in the batch). Appends each new row's
    bronze -> silver latency (seconds) to ``latencies``."""
    await conn.execute(q("silver_stage_create"))
    async with conn.cursor() as cur:
        async with cur.copy(q("silver_stage_copy")) as copy:
            for arrival, t in enumerate(txns):
                tx, row = t.tx, t.row
                await copy.write_row((tx.store_id, tx.transaction_id, tx.ts, tx.total_amount, tx.currency,
                                      tx.device_id, tx.customer_segment, tx.payment_method, len(t.lines),
                                      row.source, row.event_hash, row.bronze_id, row.received_at, arrival))
        await cur.execute(q("insert_transactions_from_stage"))
        rows = await cur.fetchall()
    latencies.extend(float(latency) for _, _, latency in rows)
    return {str(h): int(txn_id) for txn_id, h, _ in rows}


async def _insert_transactions(conn: AsyncConnection, plan: Plan,
                               latencies: list[float]) -> tuple[dict[str, int], int]:
    """Insert; returns event_hash -> txn_id of new rows and the count already present (replays).
    Appends each new row's bronze -> silver latency (seconds) to ``latencies``.

    Two versions of one (store_id, transaction_id): the one received first (lower partition offset: versions
    share a key, so a partition) stays in silver, the other goes to quarantine as ``conflicting_duplicate``,
    whatever order concurrent silver workers commit them in.
    """
    if not plan.transactions:
        return {}, 0
    inserted = await _insert(conn, plan.transactions, latencies)
    refused = [t for t in plan.transactions if t.row.event_hash not in inserted]
    if not refused:
        return inserted, 0
    cur = await conn.execute(
        q("transactions_by_key"),
        {"store_ids": [t.tx.store_id for t in refused], "transaction_ids": [t.tx.transaction_id for t in refused]},
    )
    existing = {(s, t): (str(h), int(i), (int(p), int(o))) for s, t, h, i, p, o in await cur.fetchall()}
    already = 0
    earlier: list[PlannedTransaction] = []
    for t in refused:
        hit = existing.get((t.tx.store_id, t.tx.transaction_id))
        if hit is not None and hit[0] == t.row.event_hash:
            already += 1  # the same event landed before (e.g. a replayed bronze row)
        elif hit is not None and hit[2] > t.row.arrival:
            earlier.append(t)  # ours was received first: the row in silver is the later duplicate
        else:
            details = {"existing_event_hash": hit[0] if hit else None, "existing_txn_id": hit[1] if hit else None}
            plan.quarantined.append(
                Quarantined(t.row, t.tx.store_id, t.tx.transaction_id, ("conflicting_duplicate",), details)
            )
    if earlier:
        inserted.update(await _displace(conn, plan, earlier, existing, latencies))
    return inserted, already


async def _displace(conn: AsyncConnection, plan: Plan, earlier: list[PlannedTransaction],
                    existing: dict[tuple[str, str], tuple[str, int, tuple[int, int]]],
                    latencies: list[float]) -> dict[str, int]:
    """Move later versions out of silver into quarantine and insert the earlier ones in their place."""
    by_key = {(t.tx.store_id, t.tx.transaction_id): t for t in earlier}
    cur = await conn.execute(q("displace_transactions"),
                             {"txn_ids": [existing[k][1] for k in by_key]})
    for _txn_id, bronze_id, event_hash, store_id, transaction_id in await cur.fetchall():
        winner = by_key[(store_id, transaction_id)]
        row = ClaimedRow(int(bronze_id), str(event_hash), "", "", winner.row.received_at, store_id, transaction_id)
        plan.quarantined.append(Quarantined(row, store_id, transaction_id, ("conflicting_duplicate",),
                                            {"existing_event_hash": winner.row.event_hash, "displaced": True}))
    return await _insert(conn, earlier, latencies)


async def _copy_lines(conn: AsyncConnection, plan: Plan, inserted: dict[str, int],
                      by_sku: dict[str, Match], by_name: dict[str, Match]) -> Counter[str]:
    """COPY the new transactions' line items; returns line items written per link method."""
    methods: Counter[str] = Counter()
    async with conn.cursor() as cur, cur.copy(q("copy_line_items")) as copy:
        for t in plan.transactions:
            txn_id = inserted.get(t.row.event_hash)
            if txn_id is None:
                continue
            for ln in t.lines:
                key: int | None
                method: LinkMethod
                if ln.product_id is not None:  # the SKU's product, or the one its alias points to
                    known = by_sku[ln.product_id]
                    key, method, confidence = known.product_key, known.method, known.confidence
                elif (match := by_name.get(ln.name_norm or "")) is not None:
                    key, method, confidence = match.product_key, match.method, match.confidence
                else:
                    key, method, confidence = None, "unlinked", CONFIDENCE["unlinked"]
                await copy.write_row((txn_id, ln.line_no, key, ln.product_id, ln.product_name, ln.qty,
                                      ln.unit_price, ln.line_amount, method, confidence))
                methods[method] += 1
    return methods


async def _quarantine(conn: AsyncConnection, items: list[Quarantined]) -> None:
    if not items:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            q("insert_quarantine"),
            [
                {"bronze_id": z.row.bronze_id, "event_hash": z.row.event_hash, "store_id": z.store_id,
                 "transaction_id": z.transaction_id, "reasons": list(z.reasons), "details": Jsonb(z.details)}
                for z in items
            ],
        )


async def _record_warnings(conn: AsyncConnection, plan: Plan, inserted: dict[str, int]) -> dict[str, int]:
    """Count the `warning` rules broken by transactions that landed (silver.transaction_warnings)."""
    rows = [(inserted[t.row.event_hash], v.rule.name, v.detail)
            for t in plan.transactions if t.warnings and t.row.event_hash in inserted for v in t.warnings]
    if not rows:
        return {}
    txn_ids, rules, details = (list(col) for col in zip(*rows, strict=True))
    await conn.execute(q("insert_transaction_warnings"), {"txn_ids": txn_ids, "rules": rules, "details": details})
    return dict(Counter(rules))


async def _apply(conn: AsyncConnection, rows: list[ClaimedRow], limits: Thresholds,
                 catalogue: Catalogue | None) -> StepResult:
    plan = build_plan(rows, limits)
    if plan.store_ids:
        await conn.execute(q("upsert_stores"), {"store_ids": plan.store_ids})
    by_sku, by_name = await _product_keys(conn, plan, catalogue)
    if links := plan.name_links(by_name):
        name, norm, key, method, confidence = (list(col) for col in zip(*links, strict=True))
        await conn.execute(q("insert_name_links"), {"names": name, "norms": norm, "keys": key, "methods": method,
                                                    "confidences": confidence})
    latencies: list[float] = []
    inserted, already = await _insert_transactions(conn, plan, latencies)
    methods = await _copy_lines(conn, plan, inserted, by_sku, by_name) if inserted else Counter()
    warnings = await _record_warnings(conn, plan, inserted)
    await _quarantine(conn, plan.quarantined)
    reasons = Counter(reason for z in plan.quarantined for reason in z.reasons)
    return StepResult(len(rows), len(inserted), len(plan.quarantined), already, methods.total(), warnings,
                      dict(methods), dict(reasons), tuple(latencies))


async def drain_once(conn: AsyncConnection, *, limit: int, limits: Thresholds,
                     catalogue: Catalogue | None = None) -> StepResult:
    """One batch in one transaction. With ``limit=1`` (a poison row being isolated) only the row-by-row path
    runs, and a terminal error quarantines that row."""
    async with conn.transaction():
        rows, written = await _claim(conn, limit, set_path=limit > 1)
        if not rows and not written:
            return StepResult(0, 0, 0, 0, 0)
        try:
            async with conn.transaction():  # savepoint: lets a poison row be isolated below
                kept, flagged = await _judge(conn, written, limits)
                result = _set_result(len(written) - len(flagged), kept)
                if rows or flagged:
                    rows = sorted(rows + flagged, key=lambda r: r.arrival)
                    result = result + await _apply(conn, rows, limits, catalogue)
        except Exception as exc:
            if limit != 1 or classify(exc) != "terminal":
                raise
            log.error("silver: bronze row %s cannot be processed, quarantined: %r", rows[0].bronze_id, exc)
            row = rows[0]
            await _quarantine(conn, [Quarantined(row, row.store_id, row.transaction_id,
                                                 ("processing_error",), {"error": repr(exc)[:500]})])
            result = StepResult(1, 0, 1, 0, 0, quarantine_reasons={"processing_error": 1})
        if result.inserted:
            await conn.execute(q("bump_silver_watermark"))
        return result
