"""One-command UAT: simulate with faults against a deployment, wait for it to settle, check the invariants.

Example::

    report = run_uat(UatConfig(url=..., token=..., dsn=..., rate=50, duration_s=10, seed=1,
                               faults="exact_resend=0.05"), post=lambda gen, plan: asyncio.run(post_plan(...)))
    report.passed, report.to_json()
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from scout.db import q
from simulator.client import PlanReport
from simulator.faults import FaultPlan, FaultRecord
from simulator.generator import Generator
from simulator.poison import poison_messages, produce
from simulator.uat_checks import (
    Check,
    Found,
    check_accepted,
    check_alerts,
    check_dead_letters,
    check_faults,
    check_totals,
)


class SettleTimeout(RuntimeError):
    """The pipeline did not finish processing the accepted events before the deadline."""


@dataclass(frozen=True)
class UatConfig:
    url: str
    token: str
    dsn: str
    rate: float
    duration_s: float
    seed: int
    faults: str
    expect_faults: str | None = None  # what the checker is told was injected (default: ``faults``)
    settle_timeout_s: float = 180.0
    quality_wait_s: float = 90.0  # how long to wait for a quality run that saw the settled data (0: do not)
    concurrency: int = 16
    poison: int = 0  # poison messages written straight to the topic (needs kafka_bootstrap)
    kafka_bootstrap: str | None = None
    topic: str = "pos.transactions.v1"
    catalogue_refresh_s: float = 5.0  # the workers' SCOUT_CATALOGUE_REFRESH_S: how stale their catalogue may be


@dataclass
class UatReport:
    config: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def to_json(self) -> bytes:
        return orjson.dumps({"passed": self.passed, "config": self.config, "figures": self.figures,
                             "checks": [c.to_dict() for c in self.checks]}, option=orjson.OPT_INDENT_2)


def settle(dsn: str, hashes: list[str], *, timeout_s: float, interval_s: float = 0.5) -> float:
    """Wait until every accepted hash is in bronze, none is pending and silver's watermark stopped moving."""
    started = time.monotonic()
    previous: tuple[int, int, int] | None = None
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(q("uat_progress"), {"hashes": hashes}).fetchone()
            assert row is not None
            state = (int(row[0]), int(row[1]), int(row[2] or 0))
            if state[0] == len(hashes) and state[1] == 0 and state == previous:
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise SettleTimeout(f"not settled after {timeout_s:.0f}s: {state[0]}/{len(hashes)} accepted events "
                                    f"in bronze, {state[1]} pending for silver")
            previous = state
            time.sleep(interval_s)


def wait_for_quality_run(dsn: str, since: datetime, *, timeout_s: float, interval_s: float = 0.5) -> bool:
    """True once a quality run started after ``since`` (so its alerts reflect the settled data)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(q("uat_quality_runs_since"), {"since": since}).fetchone()
            if row is not None and row[0] > 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval_s)


def find(dsn: str, hashes: list[str], keys: list[tuple[str, str]], misspelt: dict[str, str] | None = None,
         refresh_s: float = 5.0) -> Found:
    """Where the hashes ended; ``misspelt`` (event hash -> the SKU of the product its line misspells) is judged
    only against the products the workers could have known when each line was processed."""
    misspelt = misspelt or {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        silver = {r[0]: bool(r[3]) for r in conn.execute(q("uat_silver"), {"hashes": hashes})}
        quarantine = {r[0]: list(r[1]) for r in conn.execute(q("uat_quarantine"), {"hashes": hashes})}
        dupes = [f"{r[0]}/{r[1]}" for r in conn.execute(q("uat_silver_keys"), {
            "stores": [k[0] for k in keys], "txns": [k[1] for k in keys]})]
        unjudged = frozenset(r[0] for r in conn.execute(q("uat_misspelt_unjudged"), {
            "hashes": list(misspelt), "skus": list(misspelt.values()), "refresh_s": refresh_s}))
    return Found(silver, quarantine, dupes, unjudged)


def misspelt_products(expected: dict[int, FaultRecord], posted: PlanReport, gen: Generator) -> dict[str, str]:
    """Event hash of each misspelt line's transaction -> the SKU of the product it misspells (its first line)."""
    last = {a.n: a.event_hash for a in sorted(posted.answers, key=lambda a: (a.n, a.index)) if a.event_hash}
    return {last[n]: gen.transaction(n)["items"][0]["product_id"] for n, r in expected.items()
            if r.outcome == "linked_fuzzy" and n in last}


def totals_after_refresh(dsn: str, *, timeout_s: float = 60.0) -> dict[str, Any]:
    """Refresh gold and read both totals in one snapshot, again while silver moved since the refresh
    (a deployment with live traffic). If silver never held still, the view is recomputed inside one
    REPEATABLE READ snapshot (then rolled back) and compared with silver in that same snapshot."""
    from jobs.gold import refresh_gold

    deadline = time.monotonic() + timeout_s
    with ConnectionPool(dsn, min_size=1, max_size=2, name="uat", open=True) as pool:
        while True:
            refresh_gold(pool, force=True)
            with pool.connection() as conn:
                row = conn.cursor(row_factory=dict_row).execute(q("uat_totals")).fetchone()
            assert row is not None
            if row["gold_current"]:
                return row
            if time.monotonic() >= deadline:
                break
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(q("uat_refresh_in_snapshot"))
        snapshot = conn.execute(q("uat_totals")).fetchone()
        conn.rollback()
    assert snapshot is not None
    return {**snapshot, "gold_current": True, "one_snapshot": True}


def critical_alerts(dsn: str, since: datetime) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(q("uat_critical_alerts"), {"since": since}).fetchall()


def dead_letters(dsn: str, keys: list[bytes], *, timeout_s: float, interval_s: float = 0.5) -> dict[str, str]:
    """Key -> dead-letter reason for the poison keys, once all are there or at the deadline."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            found = {r[0]: r[1] for r in conn.execute(q("uat_dead_letters"), {"keys": keys})}
            if len(found) == len(keys) or time.monotonic() >= deadline:
                return found
            time.sleep(interval_s)


def expected_records(config: UatConfig, sent_ns: set[int]) -> dict[int, FaultRecord]:
    """The faults the checker expects: the posted plan, or the one it is told (``expect_faults``)."""
    text = config.faults if config.expect_faults is None else config.expect_faults
    plan, gen = FaultPlan.parse(text, seed=config.seed), Generator(config.seed)
    records = {}
    for n in sorted(sent_ns):
        _, record = plan.apply(n, gen.transaction(n), gen)
        if record is not None:
            records[n] = record
    return records


def _figures(posted: PlanReport, expected: dict[int, FaultRecord], found: Found, settle_s: float) -> dict[str, Any]:
    return {
        "transactions": posted.sent, "requests": posted.requests, "achieved_rate": round(posted.achieved_rate, 1),
        "elapsed_s": round(posted.elapsed_s, 1), "by_status": {str(k): v for k, v in sorted(posted.by_status.items())},
        "connection_errors": posted.errors, "resends": posted.retries,
        "transport_errors": dict(posted.error_kinds), "accepted_events": len({a.event_hash for a in posted.answers
                                                                    if a.event_hash}),
        "faults": dict(Counter(r.kind for r in expected.values())), "in_silver": len(found.silver),
        "quarantined": dict(Counter(r for reasons in found.quarantine.values() for r in reasons)),
        "settle_s": round(settle_s, 1),
    }


def run_uat(config: UatConfig, post: Callable[[Generator, FaultPlan], PlanReport]) -> UatReport:
    """Post, settle, check. ``post`` sends the plan (the CLI passes one with a progress bar)."""
    report = UatReport({k: v for k, v in config.__dict__.items() if k not in ("token", "dsn")})
    started_at = datetime.now(UTC)
    posted = post(Generator(config.seed), FaultPlan.parse(config.faults, seed=config.seed))
    poison = poison_messages(config.seed, config.poison)
    if poison:
        if not config.kafka_bootstrap:
            raise ValueError("poison messages need the deployment's Kafka bootstrap servers")
        produce(config.kafka_bootstrap, config.topic, poison)
    hashes = sorted({a.event_hash for a in posted.answers if a.event_hash})
    settle_s = settle(config.dsn, hashes, timeout_s=config.settle_timeout_s)
    quality_seen = wait_for_quality_run(config.dsn, datetime.now(UTC), timeout_s=config.quality_wait_s)
    expected = expected_records(config, {a.n for a in posted.answers})
    gen = Generator(config.seed)
    keys = [(gen.transaction(n)["store_id"], gen.transaction(n)["transaction_id"]) for n in
            sorted({a.n for a in posted.answers})]
    found = find(config.dsn, hashes, keys, misspelt_products(expected, posted, gen), config.catalogue_refresh_s)
    report.figures = {**_figures(posted, expected, found, settle_s), "quality_run_after_settle": quality_seen}
    report.checks = [
        Check("no_server_errors", not posted.errors and not any(s >= 500 for s in posted.by_status), posted.requests,
              f"{posted.errors} connection error(s), 5xx: {sum(c for s, c in posted.by_status.items() if s >= 500)}"),
        check_accepted(expected, posted.answers, found),
        check_faults(expected, posted.answers, found),
        check_totals(totals_after_refresh(config.dsn)),
        check_alerts(critical_alerts(config.dsn, started_at), expected, found, posted.answers, quality_seen),
    ]
    if poison:
        poison_keys = [k for k, _ in poison]
        found_dead = dead_letters(config.dsn, poison_keys, timeout_s=config.settle_timeout_s)
        report.figures["dead_letters"] = len(found_dead)
        report.checks.append(check_dead_letters([k.decode() for k in poison_keys], found_dead))
    return report
