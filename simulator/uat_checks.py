"""The UAT invariants, as pure functions of what was sent, what the API answered and what the database holds.

Example::

    checks = check_landing(expected, answers, found)   # -> [Check("accepted_in_silver", True, ...), ...]
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.client import Answer
from simulator.faults import FaultRecord


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    checked: int
    detail: str
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "checked": self.checked, "detail": self.detail,
                "failures": self.failures[:20]}


@dataclass(frozen=True)
class Found:
    """Where the 2xx event hashes are: silver (hash -> has a line linked by name, fuzzy or exact), open
    quarantine reasons, and the misspelt lines that had no product to be linked to when processed."""

    silver: dict[str, bool]
    quarantine: dict[str, list[str]]
    duplicate_keys: list[str]
    # misspelt lines whose product was not yet in the workers' catalogue when the line was processed: left
    # unlinked rightly, so not judged
    unjudged_misspelt: frozenset[str] = frozenset()


def _ok(status: int) -> bool:
    return 200 <= status < 300


def by_transaction(answers: list[Answer]) -> dict[int, list[Answer]]:
    grouped: dict[int, list[Answer]] = defaultdict(list)
    for a in sorted(answers, key=lambda a: (a.n, a.index)):
        grouped[a.n].append(a)
    return grouped


def _where(h: str | None, found: Found) -> str:
    if h is None:
        return "no 2xx"
    if h in found.silver:
        return "silver"
    if h in found.quarantine:
        return f"quarantine({','.join(found.quarantine[h])})"
    return "nowhere"


def check_accepted(expected: dict[int, FaultRecord], answers: list[Answer], found: Found) -> Check:
    """Every 2xx transaction is in silver exactly once, or quarantined when its fault says so."""
    failures: list[str] = []
    checked = 0
    for n, sent in by_transaction(answers).items():
        record = expected.get(n)
        for a in sent:
            if not _ok(a.status) or a.event_hash is None:
                continue
            checked += 1
            to_quarantine = record is not None and record.outcome == "quarantined" and (
                record.kind != "conflicting_duplicate" or a.index > 0)
            where = _where(a.event_hash, found)
            if where != "silver" and not (to_quarantine and where.startswith("quarantine")):
                failures.append(f"n={n} {a.event_hash[:12]}… expected in silver, found {where}")
    failures += [f"{k} is in silver more than once" for k in found.duplicate_keys]
    return Check("accepted_in_silver", not failures, checked,
                 f"{checked} 2xx bodies in silver once (or quarantined by their fault)", failures)


def _fault_failure(record: FaultRecord, sent: list[Answer], found: Found) -> str | None:
    statuses = [a.status for a in sent]
    last = sent[-1] if sent else None
    if record.outcome == "rejected_4xx":
        return None if statuses and all(400 <= s < 500 for s in statuses) else f"expected 4xx, got {statuses}"
    if last is None or not all(_ok(s) for s in statuses):
        return f"expected 2xx, got {statuses}"
    where = _where(last.event_hash, found)
    if record.outcome == "quarantined":
        reasons = found.quarantine.get(last.event_hash or "", [])
        if record.reason not in reasons:
            return f"expected quarantine({record.reason}), found {where}"
        if record.kind == "conflicting_duplicate" and _where(sent[0].event_hash, found) != "silver":
            return f"the original of a conflicting duplicate is {_where(sent[0].event_hash, found)}, not silver"
        return None
    if where != "silver":
        return f"expected in silver, found {where}"
    if record.outcome == "lands_once" and (len({a.event_hash for a in sent}) != 1 or not sent[-1].duplicate):
        return "the resend did not answer as a duplicate of one event"
    if (record.outcome == "linked_fuzzy" and not found.silver.get(last.event_hash or "")
            and last.event_hash not in found.unjudged_misspelt):
        return "the misspelt line is not linked by name (fuzzy or exact) although its product was in the catalogue"
    return None


def check_faults(expected: dict[int, FaultRecord], answers: list[Answer], found: Found) -> Check:
    """Each injected fault ended where its record says."""
    grouped = by_transaction(answers)
    failures = []
    for n, record in sorted(expected.items()):
        problem = _fault_failure(record, grouped.get(n, []), found)
        if problem:
            failures.append(f"n={n} {record.kind} ({record.transaction_id}): {problem}")
    kinds = sorted({r.kind for r in expected.values()})
    misspelt = [r for r in expected.values() if r.outcome == "linked_fuzzy"]
    unjudged = sum(1 for r in misspelt if grouped.get(r.n) and grouped[r.n][-1].event_hash in found.unjudged_misspelt)
    note = (f"; misspellings judged against the products in the catalogue when each line was processed: "
            f"{len(misspelt) - unjudged} judged, {unjudged} not (their product was not in the catalogue yet)"
            if misspelt else "")
    return Check("faults_ended_where_expected", not failures, len(expected),
                 f"{len(expected)} faults ({', '.join(kinds) or 'none'}){note}", failures)


def check_totals(totals: dict[str, Any]) -> Check:
    """Gold totals equal silver totals after a refresh."""
    silver = (int(totals["silver_orders"]), Decimal(totals["silver_revenue"]))
    gold = (int(totals["gold_orders"]), Decimal(totals["gold_revenue"]))
    detail = f"silver {silver[0]} orders / {silver[1]}; gold {gold[0]} orders / {gold[1]}"
    if totals.get("one_snapshot"):
        detail += " (silver kept moving between refreshes: gold recomputed and compared in one snapshot)"
    elif not totals.get("gold_current", True):
        detail += " (silver kept moving: no refresh caught up with it)"
    return Check("gold_equals_silver", silver == gold, silver[0], detail, [] if silver == gold else [detail])


def check_alerts(alerts: list[dict[str, Any]], expected: dict[int, FaultRecord], found: Found,
                 answers: list[Answer], quality_seen: bool = True) -> Check:
    """Every active critical alert since the run began is explained by a quarantine reason of an injected fault."""
    grouped = by_transaction(answers)
    explained: set[str] = set()
    for n, record in expected.items():
        if record.outcome == "quarantined" and grouped.get(n):
            explained.update(found.quarantine.get(grouped[n][-1].event_hash or "", []))
    failures = [f"{a['rule']} ({a['subject'] or '-'}, count {a['count']}): {a['message']}" for a in alerts
                if a["rule"] not in explained]
    note = "" if quality_seen else "; no quality run since the pipeline settled (is the scheduler running?)"
    return Check("critical_alerts_explained", not failures, len(alerts),
                 f"{len(alerts)} active critical alert(s); explained by faults: {sorted(explained) or 'none'}{note}",
                 failures)


def check_dead_letters(keys: list[str], found: dict[str, str]) -> Check:
    """Every poison message written to the topic is in the dead letters, with a reason."""
    failures = [f"{k} is not in the dead letters" for k in keys if k not in found]
    failures += [f"{k} has no reason" for k in keys if k in found and not found[k]]
    reasons = sorted({r.split(":", 1)[0] for r in found.values()})
    return Check("poison_dead_lettered", not failures, len(keys),
                 f"{len(found)} of {len(keys)} poison messages dead-lettered (reasons: {', '.join(reasons) or '-'})",
                 failures)
