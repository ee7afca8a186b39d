"""The bronze watchdog acts on partitions with records waiting whose landed offset stopped moving, one step per
timeout (seek, then restart), and not while the agent is stuck inside one batch or a rebalance runs."""

from __future__ import annotations

from streams.watchdog import BronzeActivity, StallDetector, waiting_records


def _idle_since(t: float) -> BronzeActivity:
    activity = BronzeActivity()
    activity.last_events = t
    return activity


def test_steps_come_one_per_timeout_while_a_partition_with_records_waiting_does_not_move() -> None:
    detector = StallDetector(timeout_s=30)
    activity = _idle_since(0.0)
    seen = [(t, detector.observe(t, {"p0": 100}, activity, rebalancing=False)) for t in range(0, 100, 5)]
    assert [(t, s) for t, s in seen if s] == [(30, ("seek", ["p0"])), (60, ("restart", ["p0"])),
                                              (90, ("restart", ["p0"]))]


def test_a_stalled_partition_is_found_while_other_partitions_keep_the_agent_busy() -> None:
    detector = StallDetector(timeout_s=30)
    activity = BronzeActivity()
    decisions = []
    for t in range(0, 40, 5):
        activity.busy, activity.last_events = True, t  # a batch started just now, as under steady load
        decisions.append(detector.observe(t, {"p0": 500, "p1": 1000 + 10 * t}, activity, rebalancing=False))
    assert decisions[-3:] == [None, ("seek", ["p0"]), None]  # p1 moves; p0 has not moved since t=0


def test_no_step_when_nothing_waits_the_agent_is_stuck_in_one_batch_or_a_rebalance_runs() -> None:
    detector = StallDetector(timeout_s=30)
    detector.observe(0, {"p0": 5}, _idle_since(0), rebalancing=False)
    assert detector.observe(100, {}, _idle_since(0), rebalancing=False) is None
    detector.observe(0, {"p0": 5}, _idle_since(0), rebalancing=False)
    stuck = _idle_since(0)
    stuck.busy = True  # one batch for 100 s: PostgreSQL down, retrying; not a stalled consumer
    assert detector.observe(100, {"p0": 5}, stuck, rebalancing=False) is None
    assert detector.observe(100, {"p0": 5}, _idle_since(0), rebalancing=True) is None
    assert detector.observe(110, {"p0": 5}, _idle_since(0), rebalancing=False) is None  # watched anew from 110


def test_progress_resets_the_escalation() -> None:
    detector = StallDetector(timeout_s=30)
    activity = _idle_since(0)
    detector.observe(0, {"p0": 100}, activity, rebalancing=False)
    assert detector.observe(31, {"p0": 100}, activity, rebalancing=False) == ("seek", ["p0"])
    assert detector.observe(40, {"p0": 150}, activity, rebalancing=False) is None  # the seek helped
    assert detector.observe(65, {"p0": 150}, activity, rebalancing=False) is None
    assert detector.observe(71, {"p0": 150}, activity, rebalancing=False) == ("seek", ["p0"])  # a new stall


def test_waiting_records_are_the_partitions_whose_broker_holds_records_past_the_landed_offset() -> None:
    assert waiting_records({"p0": 120, "p1": 50, "p2": 7, "p3": 9}, {"p0": 100, "p1": 50, "p2": None}) == {"p0": 100}
