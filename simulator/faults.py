"""Fault injection for the simulator: each fault kind, how it is made, and where it must end up.

Faults are chosen per transaction number from the seed, so a run is reproducible; every injected fault
is recorded (``FaultRecord``) so UAT can check its outcome.

Example::

    plan = FaultPlan.parse("exact_resend=0.05,bad_total=0.01", seed=42)
    for n in range(1000):
        for sent in plan.apply(n, gen.transaction(n), gen): ...
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson

from simulator.source import TransactionSource

Fate = Literal["lands", "lands_once", "rejected_4xx", "quarantined", "linked_fuzzy"]


@dataclass(frozen=True)
class FaultKind:
    name: str
    outcome: Fate
    reason: str | None  # the quarantine reason or the rejected field


KINDS: dict[str, FaultKind] = {k.name: k for k in (
    FaultKind("exact_resend", "lands_once", None),
    FaultKind("conflicting_duplicate", "quarantined", "conflicting_duplicate"),
    FaultKind("malformed_json", "rejected_4xx", "(body)"),
    FaultKind("missing_field", "rejected_4xx", "store_id"),
    FaultKind("bad_total", "quarantined", "line_sum_mismatch"),
    FaultKind("negative_quantity", "quarantined", "negative_quantity"),
    FaultKind("over_threshold", "quarantined", "over_threshold"),
    FaultKind("misspelt_product", "linked_fuzzy", None),
    FaultKind("late_event", "lands", None),
    FaultKind("unknown_store", "lands", None),
)}


@dataclass(frozen=True)
class Sent:
    """One request body to send (JSON-ready dict, or raw bytes for malformed input)."""

    body: dict[str, Any] | bytes
    fault: str | None
    transaction_id: str
    store_id: str


@dataclass(frozen=True)
class FaultRecord:
    n: int
    kind: str
    outcome: Fate
    reason: str | None
    store_id: str
    transaction_id: str

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)


def _typo(rng: random.Random, name: str) -> str:
    words = name.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long_words:
        return name.upper()
    i = rng.choice(long_words)
    j = rng.randrange(1, len(words[i]) - 1)
    words[i] = words[i][:j] + words[i][j + 1:]  # drop one letter
    return " ".join(words)


def _apply(kind: str, tx: dict[str, Any], rng: random.Random, gen: TransactionSource) -> list[dict[str, Any] | bytes]:
    makers: dict[str, Callable[[], list[dict[str, Any] | bytes]]] = {
        "exact_resend": lambda: [tx, dict(tx)],
        "conflicting_duplicate": lambda: [tx, _conflict(tx)],
        "malformed_json": lambda: [orjson.dumps(tx)[:-7] + b"}"],
        "missing_field": lambda: [{k: v for k, v in tx.items() if k != "store_id"}],
        "bad_total": lambda: [{**tx, "total_amount": str(Decimal(tx["total_amount"]) * 2 + 1)}],
        "negative_quantity": lambda: [_negative(tx)],
        "over_threshold": lambda: [_over(tx)],
        "misspelt_product": lambda: [_misspelt(tx, rng)],
        "late_event": lambda: [{**tx, "ts": (datetime.fromisoformat(tx["ts"]) - timedelta(days=3)).isoformat()}],
        "unknown_store": lambda: [{**tx, "store_id": f"STORE-NEW-{rng.randint(100, 999)}"}],
    }
    return makers[kind]()


def _conflict(tx: dict[str, Any]) -> dict[str, Any]:
    first = tx["items"][0]
    changed = {**first, "qty": first["qty"] + 1, "line_amount": None}
    changed.pop("line_amount")
    delta = Decimal(first["unit_price"])
    return {**tx, "items": [changed, *tx["items"][1:]], "total_amount": str(Decimal(tx["total_amount"]) + delta)}


def _negative(tx: dict[str, Any]) -> dict[str, Any]:
    first = tx["items"][0]
    line = Decimal(first["unit_price"]) * -1
    rest = sum((Decimal(i["line_amount"]) for i in tx["items"][1:]), Decimal(0))
    return {**tx, "items": [{**first, "qty": -1, "line_amount": str(line)}, *tx["items"][1:]],
            "total_amount": str(rest + line)}


def _over(tx: dict[str, Any]) -> dict[str, Any]:
    first = tx["items"][0]
    qty = int(Decimal("12000") / Decimal(first["unit_price"])) + 1
    line = Decimal(first["unit_price"]) * qty
    return {**tx, "items": [{**first, "qty": qty, "line_amount": str(line)}], "total_amount": str(line)}


def _misspelt(tx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    first = {k: v for k, v in tx["items"][0].items() if k != "product_id"}
    first["product_name"] = _typo(rng, first.get("product_name") or tx["items"][0]["product_id"])
    return {**tx, "items": [first, *tx["items"][1:]]}


class FaultPlan:
    """Which fault (if any) transaction n carries, at the given rates."""

    def __init__(self, rates: dict[str, float], seed: int) -> None:
        unknown = sorted(set(rates) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(KINDS)}")
        if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("fault rates must be >= 0 and add up to at most 1")
        self.rates, self.seed = rates, seed

    @classmethod
    def parse(cls, text: str, *, seed: int) -> FaultPlan:
        """``"exact_resend=0.05,bad_total=0.01"``; ``"all=0.01"`` gives every kind that rate."""
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(f"{part!r}: write KIND=RATE, e.g. bad_total=0.01") from None
            for kind in (KINDS if name == "all" else [name]):
                rates[kind] = rate
        return cls(rates, seed)

    def choose(self, n: int) -> str | None:
        roll = random.Random(f"fault:{self.seed}:{n}").random()
        for kind, rate in self.rates.items():
            if roll < rate:
                return kind
            roll -= rate
        return None

    def apply(self, n: int, tx: dict[str, Any], gen: TransactionSource) -> tuple[list[Sent], FaultRecord | None]:
        kind = self.choose(n)
        if kind is None:
            return [Sent(tx, None, tx["transaction_id"], tx["store_id"])], None
        bodies = _apply(kind, tx, random.Random(f"fault-body:{self.seed}:{n}"), gen)
        spec = KINDS[kind]
        sent = [Sent(b, kind, tx["transaction_id"], b.get("store_id", tx["store_id"]) if isinstance(b, dict)
                     else tx["store_id"]) for b in bodies]
        return sent, FaultRecord(n, kind, spec.outcome, spec.reason, sent[-1].store_id, tx["transaction_id"])
