"""``scout verify``: wires what this code deploys (jobs, gold views) into the checks of ``cli.verify``."""

from __future__ import annotations

from rich.console import Console

from cli.verify import Expected, render, run_checks
from scout.settings import Settings


def expected(settings: Settings, *, max_lag: int, max_silver_delay_s: float) -> Expected:
    from jobs.gold import GOLD_VIEWS
    from jobs.registry import JOBS

    return Expected(job_intervals_s={name: job.interval_s(settings) for name, job in JOBS.items()},
                    gold_views=tuple(view.name for view in GOLD_VIEWS), max_lag=max_lag,
                    max_silver_delay_s=max_silver_delay_s)


def run_verify(settings: Settings, *, console: Console, max_lag: int = 10_000, max_silver_delay_s: float = 300.0,
               json_output: bool = False) -> int:
    checks = run_checks(settings, expected(settings, max_lag=max_lag, max_silver_delay_s=max_silver_delay_s))
    return render(checks, console, json_output=json_output)
