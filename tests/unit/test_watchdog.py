"""The bronze watchdog acts only on an idle agent with records waiting, one step per timeout: seek, then restart."""

from __future__ import annotations

from streams.watchdog import BronzeActivity, StallDetector, waiting_records


def _idle_since(t: float) -> BronzeActivity:
    activity = BronzeActivity()
    activity.last_events = t
    return activity


def test_steps_come_one_per_timeout_while_the_idle_agent_has_records_waiting() -> None:
    detector = StallDetector(timeout_s=30)
    activity = _idle_since(0.0)
    seen = [(t, detector.observe(t, 5, activity, rebalancing=False)) for t in range(0, 100, 5)]
    assert [(t, s) for t, s in seen if s] == [(30, "seek"), (60, "restart"), (90, "restart")]


def test_no_step_when_nothing_waits_the_agent_is_busy_or_a_rebalance_runs() -> None:
    detector = StallDetector(timeout_s=30)
    assert detector.observe(100, 0, _idle_since(0), rebalancing=False) is None
    busy = _idle_since(0)
    busy.busy = True  # a long batch (PostgreSQL down, retrying) is not a stalled consumer
    assert detector.observe(100, 5, busy, rebalancing=False) is None
    assert detector.observe(100, 5, _idle_since(0), rebalancing=True) is None
    assert detector.observe(100, 5, _idle_since(80), rebalancing=False) is None  # events 20 s ago


def test_progress_resets_the_escalation() -> None:
    detector = StallDetector(timeout_s=30)
    activity = _idle_since(0)
    assert detector.observe(31, 5, activity, rebalancing=False) == "seek"
    activity.batch_started()
    activity.batch_done()
    activity.last_events = 40  # the seek helped: events flowed at t=40
    assert detector.observe(65, 5, activity, rebalancing=False) is None
    assert detector.observe(71, 5, activity, rebalancing=False) == "seek"  # a new stall starts over


def test_waiting_records_are_the_partitions_whose_broker_holds_records_past_the_landed_offset() -> None:
    assert waiting_records({"p0": 120, "p1": 50, "p2": 7, "p3": 9}, {"p0": 100, "p1": 50, "p2": None}) == {"p0": 100}
