"""Pure computations of the end-to-end benchmark: latency percentiles, RSS trend, gold freshness sampling,
and the median / spread of every figure over repeats.

Example::

    percentiles([0.2, 0.4, 1.9])                     # {"p50": 0.4, "p95": 1.9, "p99": 1.9}
    fresh = FreshnessSampler()
    fresh.observe(now=10.0, silver_version=7, silver_committed_at=9.2, gold_version=6)
    fresh.observe(now=21.0, silver_version=9, silver_committed_at=20.5, gold_version=7)
    fresh.lags                                       # [11.8]: version 7 committed at 9.2, seen in gold at 21.0
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
WARM_UP_SHARE = 0.2  # RSS trend: the first fifth of the run (imports, caches, pools filling) is left out
FLAT_GROWTH_SHARE = 0.05  # RSS counts as flat when the fitted growth over the run is under 5% ...
FLAT_GROWTH_MIB = 10.0  # ... or under 10 MiB, whichever is larger


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """Nearest-rank p50 / p95 / p99 (None for no values): the value that q of all values do not exceed."""
    ordered = sorted(values)
    if not ordered:
        return dict.fromkeys(QUANTILES)
    return {name: ordered[max(0, math.ceil(q * len(ordered)) - 1)] for name, q in QUANTILES.items()}


def post_to_silver(sent_at: Mapping[str, float], committed: Iterable[tuple[str, float]]) -> tuple[list[float], int]:
    """Seconds from each transaction's send time to its silver commit, and how many sent ones never arrived.

    ``committed`` holds (transaction id, commit time) pairs; ids that were not sent in this run are ignored.
    """
    lags: list[float] = []
    seen: set[str] = set()
    for key, at in committed:
        sent = sent_at.get(key)
        if sent is not None and key not in seen:
            seen.add(key)
            lags.append(at - sent)
    return lags, len(sent_at) - len(seen)


def slope_per_min(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, per minute (0 with fewer than two distinct times)."""
    if len({t for t, _ in samples}) < 2:
        return 0.0
    times, values = zip(*samples, strict=True)
    return statistics.linear_regression(times, values).slope * 60


def rss_trend(samples: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Start / mid / end / peak of (seconds, MiB) samples, the slope after warm-up and whether it is flat, and the
    same over the second half of the run alone (``second_half_*``): a process whose bounded memories fill during
    the first minutes grows after warm-up, then levels off.

    Example: ``rss_trend([(0, 100), (60, 160), (120, 161), (180, 161)])["second_half_flat"]`` is True.
    """
    if not samples:
        return {"start_mib": None, "mid_mib": None, "end_mib": None, "peak_mib": None,
                "slope_mib_per_min": None, "growth_mib": None, "flat": None,
                "second_half_slope_mib_per_min": None, "second_half_growth_mib": None, "second_half_flat": None}
    first, last = samples[0][0], samples[-1][0]
    steady = [s for s in samples if s[0] >= first + WARM_UP_SHARE * (last - first)]
    slope = slope_per_min(steady)
    growth = slope * (steady[-1][0] - steady[0][0]) / 60
    mid = samples[len(samples) // 2][1]
    second = [s for s in samples if s[0] >= first + (last - first) / 2]
    second_slope = slope_per_min(second)
    second_growth = second_slope * (second[-1][0] - second[0][0]) / 60
    bound = max(FLAT_GROWTH_MIB, FLAT_GROWTH_SHARE * mid)
    return {"start_mib": samples[0][1], "mid_mib": mid, "end_mib": samples[-1][1],
            "peak_mib": max(v for _, v in samples), "slope_mib_per_min": slope, "growth_mib": growth,
            "flat": growth <= bound, "second_half_slope_mib_per_min": second_slope,
            "second_half_growth_mib": second_growth, "second_half_flat": second_growth <= bound}


@dataclass
class FreshnessSampler:
    """Silver commit -> visible in gold, from periodic samples of both watermarks.

    Each sample names the current silver version with its commit time and the silver version gold was last
    refreshed from. A silver version is visible in gold from the first sample whose gold version reaches it;
    its lag is that sample's time minus its commit time (so the sampling interval bounds the resolution).
    """

    pending: dict[int, float] = field(default_factory=dict)
    lags: list[float] = field(default_factory=list)
    last_version: int = -1

    def observe(self, *, now: float, silver_version: int, silver_committed_at: float | None,
                gold_version: int | None, track: bool = True) -> None:
        """``track=False`` only resolves versions seen earlier (after the load, while gold catches up)."""
        if track and silver_version > self.last_version and silver_committed_at is not None:
            self.pending[silver_version] = silver_committed_at
            self.last_version = silver_version
        if gold_version is None:
            return
        for version in [v for v in self.pending if v <= gold_version]:
            self.lags.append(now - self.pending.pop(version))

    def summary(self) -> dict[str, Any]:
        return {"commits_sampled": len(self.lags) + len(self.pending), "unresolved": len(self.pending),
                **{f"{k}_s": v for k, v in percentiles(self.lags).items()},
                "max_s": max(self.lags) if self.lags else None}


def spread(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every number of the runs as {median, min, max}, nested as in one run; a yes/no figure (``flat``) is yes
    only when it is yes in every run; other values come from the first run."""
    first = runs[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        values = [r.get(key) for r in runs]
        if isinstance(value, bool) and all(isinstance(v, bool) for v in values):
            out[key] = all(values)
        elif isinstance(value, Mapping):
            out[key] = spread([v for v in values if isinstance(v, Mapping)])
        elif isinstance(value, int | float) and not isinstance(value, bool) and all(
                isinstance(v, int | float) for v in values):
            numbers = [float(v) for v in values if v is not None]
            out[key] = {"median": statistics.median(numbers), "min": min(numbers), "max": max(numbers)}
        else:
            out[key] = value
    return out
