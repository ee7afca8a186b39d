"""The UAT invariants judge API answers and database findings: each passes on a correct outcome and names
the transaction and where it ended up when it does not."""

from __future__ import annotations

from simulator.client import Answer
from simulator.faults import KINDS, FaultRecord
from simulator.uat_checks import Found, check_accepted, check_alerts, check_faults, check_totals


def _record(n: int, kind: str) -> FaultRecord:
    spec = KINDS[kind]
    return FaultRecord(n, kind, spec.outcome, spec.reason, "STORE-001", f"TXN-{n}")


ANSWERS = [
    Answer(0, 0, None, 202, "h0", False),
    Answer(1, 0, "exact_resend", 202, "h1", False), Answer(1, 1, "exact_resend", 202, "h1", True),
    Answer(2, 0, "bad_total", 202, "h2", False),
    Answer(3, 0, "missing_field", 422, None, False),
    Answer(4, 0, "conflicting_duplicate", 202, "h4", False),
    Answer(4, 1, "conflicting_duplicate", 202, "h4b", False),
    Answer(5, 0, "misspelt_product", 202, "h5", False),
]
EXPECTED = {1: _record(1, "exact_resend"), 2: _record(2, "bad_total"), 3: _record(3, "missing_field"),
            4: _record(4, "conflicting_duplicate"), 5: _record(5, "misspelt_product")}
GOOD = Found(silver={"h0": False, "h1": False, "h4": False, "h5": True},
             quarantine={"h2": ["line_sum_mismatch"], "h4b": ["conflicting_duplicate"]}, duplicate_keys=[])


def test_a_correct_run_passes_every_check() -> None:
    assert check_accepted(EXPECTED, ANSWERS, GOOD).passed
    faults = check_faults(EXPECTED, ANSWERS, GOOD)
    assert faults.passed and faults.checked == 5
    alerts = [{"rule": "line_sum_mismatch", "subject": "", "count": 1, "message": "m"}]
    assert check_alerts(alerts, EXPECTED, GOOD, ANSWERS).passed


def test_a_missing_transaction_fails_and_says_where_it_is() -> None:
    lost = Found({k: v for k, v in GOOD.silver.items() if k != "h0"}, GOOD.quarantine, [])
    check = check_accepted(EXPECTED, ANSWERS, lost)
    assert not check.passed and check.failures == ["n=0 h0… expected in silver, found nowhere"]


def test_an_unexpected_quarantine_fails_the_landing_check() -> None:
    check = check_accepted({}, ANSWERS, GOOD)
    assert not check.passed
    assert any("quarantine(line_sum_mismatch)" in f for f in check.failures)


def test_a_fault_that_ended_elsewhere_is_named() -> None:
    wrong = Found({**GOOD.silver, "h2": False, "h5": False}, {"h4b": ["conflicting_duplicate"]}, [])
    failures = check_faults(EXPECTED, ANSWERS, wrong).failures
    assert failures == ["n=2 bad_total (TXN-2): expected quarantine(line_sum_mismatch), found silver",
                        "n=5 misspelt_product (TXN-5): the misspelt line is not linked by name (fuzzy or exact) "
                        "although its product was in the catalogue"]
    accepted_4xx = [*ANSWERS[:4], Answer(3, 0, "missing_field", 202, "h3", False), *ANSWERS[5:]]
    assert any("expected 4xx, got [202]" in f for f in check_faults(EXPECTED, accepted_4xx, GOOD).failures)


def test_a_duplicate_key_in_silver_fails() -> None:
    dupes = Found(GOOD.silver, GOOD.quarantine, ["STORE-001/TXN-1"])
    assert check_accepted(EXPECTED, ANSWERS, dupes).failures == ["STORE-001/TXN-1 is in silver more than once"]


def test_gold_must_equal_silver() -> None:
    same = {"silver_orders": 3, "silver_revenue": "10.50", "gold_orders": 3, "gold_revenue": "10.50"}
    assert check_totals(same).passed
    assert not check_totals({**same, "gold_revenue": "10.49"}).passed


def test_an_alert_no_fault_explains_fails() -> None:
    alerts = [{"rule": "negative_amount", "subject": "", "count": 2, "message": "below zero"}]
    check = check_alerts(alerts, EXPECTED, GOOD, ANSWERS)
    assert not check.passed and check.failures == ["negative_amount (-, count 2): below zero"]


def test_a_misspelling_of_a_product_not_yet_in_the_catalogue_is_not_judged() -> None:
    """A fresh deployment: the misspelt line came before any line had created its product, so no pipeline could
    have linked it; the UAT must not fail for it, and says how many it did not judge."""
    unlinked = Found({**GOOD.silver, "h5": False}, GOOD.quarantine, [], unjudged_misspelt=frozenset({"h5"}))
    check = check_faults(EXPECTED, ANSWERS, unlinked)
    assert check.passed, check.failures
    assert "0 judged, 1 not (their product was not in the catalogue yet)" in check.detail
    judged = check_faults(EXPECTED, ANSWERS, GOOD)
    assert judged.passed and "1 judged, 0 not" in judged.detail
