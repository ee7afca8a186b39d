"""Every fault kind produces what it promises: the contract and the rules send it where its record says."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from quality.rules import Thresholds, evaluate
from scout.contract import Transaction
from scout.settings import Settings
from simulator.faults import KINDS, FaultPlan
from simulator.generator import Generator

LIMITS = Thresholds.from_settings(Settings())


def _sent_for(kind: str) -> tuple[list, object]:  # type: ignore[type-arg]
    gen = Generator(seed=5)
    plan = FaultPlan({kind: 1.0}, seed=5)
    sent, record = plan.apply(3, gen.transaction(3), gen)
    return sent, record


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fault_outcome_matches_its_record(kind: str) -> None:
    sent, record = _sent_for(kind)
    assert record is not None and record.kind == kind  # type: ignore[attr-defined]
    spec = KINDS[kind]
    if spec.outcome == "rejected_4xx":
        with pytest.raises((ValidationError, ValueError)):
            body = sent[-1].body
            Transaction.model_validate_json(body if isinstance(body, bytes) else orjson.dumps(body))
        return
    txs = [Transaction.model_validate(s.body) for s in sent]
    critical = {v.rule.name for v in evaluate(txs[-1], LIMITS, now=txs[-1].ts) if v.rule.severity == "critical"}
    if spec.outcome == "quarantined" and spec.reason != "conflicting_duplicate":
        assert spec.reason in critical
        return
    assert critical == set()
    if spec.outcome == "lands_once":
        assert len({t.event_hash() for t in txs}) == 1 and len(txs) == 2
    if kind == "conflicting_duplicate":
        assert len({t.event_hash() for t in txs}) == 2
        assert len({(t.store_id, t.transaction_id) for t in txs}) == 1
    if spec.outcome == "linked_fuzzy":
        assert txs[0].items[0].product_id is None


def test_rates_are_honoured_and_reproducible() -> None:
    plan = FaultPlan.parse("exact_resend=0.10,bad_total=0.05", seed=9)
    chosen = [plan.choose(n) for n in range(20_000)]
    assert abs(chosen.count("exact_resend") / 20_000 - 0.10) < 0.01
    assert abs(chosen.count("bad_total") / 20_000 - 0.05) < 0.01
    assert chosen == [FaultPlan.parse("exact_resend=0.10,bad_total=0.05", seed=9).choose(n) for n in range(20_000)]


def test_bad_fault_specs_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan.parse("teleport=0.1", seed=1)
    with pytest.raises(ValueError, match="KIND=RATE"):
        FaultPlan.parse("bad_total=lots", seed=1)
    with pytest.raises(ValueError, match="at most 1"):
        FaultPlan.parse("all=0.2", seed=1)
