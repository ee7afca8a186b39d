"""The simulator's distributions are what the generator says: daily peaks, weekly rhythm, segment basket sizes,
category weights, store weights — within tolerances, and the same for one seed twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from statistics import fmean

from simulator.generator import CATEGORY_WEIGHTS, HOURLY, SEGMENTS, WEEKDAY, Generator

N = 20_000


def _sample(seed: int = 21) -> tuple[Generator, list[dict]]:  # type: ignore[type-arg]
    gen = Generator(seed=seed, per_day=4_000)
    return gen, [gen.transaction(n) for n in range(N)]


def test_local_hours_follow_the_daily_curve() -> None:
    gen = Generator(seed=1, per_day=4_000)
    local = Counter((gen.timestamp(n) + timedelta(hours=8)).hour for n in range(0, 7 * 4_000))
    total = sum(local.values())
    weights = [HOURLY[h] * fmean(WEEKDAY) for h in range(24)]
    for hour in range(24):
        expected = weights[hour] / sum(weights)
        assert abs(local[hour] / total - expected) < 0.006, hour
    assert local[18] > 3 * local[3] and local[12] > local[15]  # evening and lunch peaks, quiet nights


def test_weekends_are_busier_than_mondays() -> None:
    gen = Generator(seed=1, per_day=2_000)
    days = Counter((gen.timestamp(n) + timedelta(hours=8)).weekday() for n in range(0, 14 * 2_000))
    assert abs(days[5] / days[0] - WEEKDAY[5] / WEEKDAY[0]) < 0.05


def test_segments_shape_basket_sizes_and_shares() -> None:
    _, sample = _sample()
    by_segment: dict[str, list[int]] = {}
    for tx in sample:
        by_segment.setdefault(tx["customer_segment"], []).append(len(tx["items"]))
    for name, (share, sizes, *_rest) in SEGMENTS.items():
        assert abs(len(by_segment[name]) / N - share) < 0.02, name
        expected_mean = sum(k * w for k, w in sizes.items()) / sum(sizes.values())
        assert fmean(by_segment[name]) <= expected_mean + 0.01, name  # duplicates and the basket cap only lower it
        assert fmean(by_segment[name]) >= expected_mean * 0.75, name
    assert fmean(by_segment["family"]) > 2 * fmean(by_segment["budget"])
    students = {i["category"] for tx in sample if tx["customer_segment"] == "student" for i in tx["items"]}
    assert students == {"beverages", "snacks"}


def test_categories_follow_their_weights_outside_student_baskets() -> None:
    _, sample = _sample()
    counts = Counter(i["category"] for tx in sample if tx["customer_segment"] != "student" for i in tx["items"])
    total = sum(counts.values())
    for category, weight in CATEGORY_WEIGHTS.items():
        assert abs(counts[category] / total - weight / sum(CATEGORY_WEIGHTS.values())) < 0.02, category


def test_stores_get_traffic_by_their_size() -> None:
    gen, sample = _sample()
    counts = Counter(tx["store_id"] for tx in sample)
    sizes = {s.store_id: s.size for s in gen.store_list}
    biggest, smallest = max(sizes, key=sizes.__getitem__), min(sizes, key=sizes.__getitem__)
    expected_ratio = sizes[biggest] / sizes[smallest]
    assert abs(counts[biggest] / counts[smallest] - expected_ratio) / expected_ratio < 0.25


def test_one_seed_gives_the_same_stream_twice() -> None:
    assert _sample(5)[1][:2_000] == _sample(5)[1][:2_000]
