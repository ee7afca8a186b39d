"""The end-to-end benchmark's pure computations: percentiles, POST -> silver matching, RSS trend, gold
freshness sampling, the spread over repeats and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from cli.bench.e2e import StampedGenerator
from cli.bench.e2e_stats import FreshnessSampler, percentiles, post_to_silver, rss_trend, slope_per_min, spread
from simulator.generator import Generator


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]  # 1..100
    assert percentiles(reversed(values)) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([3.0]) == {"p50": 3.0, "p95": 3.0, "p99": 3.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def test_post_to_silver_matches_by_id_and_counts_the_missing() -> None:
    sent = {"a": 10.0, "b": 11.0, "c": 12.0}
    lags, missing = post_to_silver(sent, [("a", 10.5), ("b", 13.0), ("b", 14.0), ("other", 1.0)])
    assert lags == [0.5, 2.0]  # a duplicate row counts once, an id not sent in the run not at all
    assert missing == 1


def test_slope_per_minute() -> None:
    assert slope_per_min([(0.0, 100.0), (30.0, 101.0), (60.0, 102.0)]) == pytest.approx(2.0)
    assert slope_per_min([(5.0, 100.0)]) == 0.0


def test_rss_flat_after_warm_up_and_growing_when_it_keeps_climbing() -> None:
    warm_then_flat = [(float(t), 100.0 + min(t, 10) * 5) for t in range(0, 301)]  # +50 MiB in 10 s, then flat
    trend = rss_trend(warm_then_flat)
    assert trend["start_mib"] == 100.0 and trend["end_mib"] == 150.0 and trend["peak_mib"] == 150.0
    assert trend["slope_mib_per_min"] == pytest.approx(0.0)
    assert trend["flat"] is True
    leaking = [(float(t), 100.0 + t * 0.5) for t in range(0, 301)]  # +30 MiB/min
    trend = rss_trend(leaking)
    assert trend["slope_mib_per_min"] == pytest.approx(30.0)
    assert trend["flat"] is False and trend["second_half_flat"] is False
    assert rss_trend([])["flat"] is None


def test_rss_that_fills_its_caches_for_minutes_then_stops_grows_overall_and_is_flat_in_the_second_half() -> None:
    filling = [(float(t), 250.0 + min(t, 220) * 0.4) for t in range(0, 601, 3)]  # +88 MiB over 220 s, then flat
    trend = rss_trend(filling)
    assert trend["flat"] is False  # after the first fifth it still climbs for 100 s
    assert trend["second_half_slope_mib_per_min"] == pytest.approx(0.0)
    assert trend["second_half_growth_mib"] == pytest.approx(0.0)
    assert trend["second_half_flat"] is True


def test_freshness_is_gold_catching_up_with_sampled_silver_commits() -> None:
    fresh = FreshnessSampler()
    fresh.observe(now=10.0, silver_version=7, silver_committed_at=9.2, gold_version=None)
    fresh.observe(now=10.5, silver_version=7, silver_committed_at=9.2, gold_version=6)  # same commit: once
    fresh.observe(now=15.0, silver_version=9, silver_committed_at=14.0, gold_version=6)
    fresh.observe(now=21.0, silver_version=12, silver_committed_at=20.5, gold_version=8)  # 7 visible, 9 not
    assert fresh.lags == [pytest.approx(11.8)]
    fresh.observe(now=30.0, silver_version=15, silver_committed_at=29.0, gold_version=12, track=False)
    assert fresh.lags == [pytest.approx(11.8), pytest.approx(16.0), pytest.approx(9.5)]  # 15 was not tracked
    summary = fresh.summary()
    assert summary["commits_sampled"] == 3 and summary["unresolved"] == 0
    assert summary["p95_s"] == pytest.approx(16.0) and summary["max_s"] == pytest.approx(16.0)


def test_freshness_ignores_a_sample_without_commit_time() -> None:
    fresh = FreshnessSampler()
    fresh.observe(now=1.0, silver_version=0, silver_committed_at=None, gold_version=0)
    assert fresh.summary()["commits_sampled"] == 0


def test_spread_gives_median_min_max_of_every_number() -> None:
    runs = [{"tx_s": 100.0, "lat": {"p99": 1.0}, "flat": True, "samples": [(0, 1)]},
            {"tx_s": 300.0, "lat": {"p99": 3.0}, "flat": False, "samples": []},
            {"tx_s": 200.0, "lat": {"p99": None}, "flat": True, "samples": []}]
    out = spread(runs)
    assert out["tx_s"] == {"median": 200.0, "min": 100.0, "max": 300.0}
    assert out["lat"]["p99"] == 1.0  # not a number in every run: the first run's value
    assert out["flat"] is False  # flat only when flat in every run
    assert out["samples"] == [(0, 1)]


def test_stamped_generator_encodes_the_simulators_stream_and_stamps_only_at_send() -> None:
    gen = StampedGenerator(7)
    encoded = gen.encoded(4)
    assert [tid for tid, _ in encoded] == [f"TXN-7-{n:08d}" for n in range(4)]
    assert orjson.loads(encoded[3][1]) == Generator(7, stores=50).transaction(3)  # the simulator's stream
    assert gen.sent_at == {}  # the load loop stamps each transaction when it sends it


def _run(workers: int) -> dict[str, object]:
    return {"silver_workers": workers, "accepted_tx_s": 40.0 * workers,
            "silver": {"tx_s": 39.0 * workers, "post_to_silver_s": {"p50": 1.0, "p95": 2.0, "p99": 3.0}},
            "raw": {"kafka_produce_msg_s": 9000.0, "copy_silver_tx_with_lines_s": 12000.0},
            "rss": {"worker-0": {"samples": [[0.5, 80.0], [1.0, 81.0]]}}}


def test_plot_writes_a_png_of_runs_side_by_side(tmp_path: Path) -> None:
    from cli.bench.plot import load_runs, plot_e2e

    reports = []
    for workers in (1, 2):
        path = tmp_path / f"bench-e2e-{workers}.json"
        path.write_text(json.dumps({"results": {"e2e": {"runs": [_run(workers)], "summary": {}}}}))
        reports.append(path)
    runs = load_runs(reports)
    assert [label for label, _ in runs] == ["1 stream worker(s)", "2 stream worker(s)"]
    plot_e2e(runs, tmp_path / "e2e.png")
    assert (tmp_path / "e2e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
