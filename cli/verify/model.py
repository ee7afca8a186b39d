"""What a verify check returns, and what a deployment is expected to have (passed in by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Result:
    """One line of the report: ``detail`` names the cause and what to do when ``status`` is not ok."""

    check: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Expected:
    """What a healthy deployment has: the scheduler's jobs and their intervals, the gold views, limits.

    The core does not import the stages; the CLI fills this from ``jobs.registry`` and ``jobs.gold``.
    """

    job_intervals_s: dict[str, float] = field(default_factory=dict)
    gold_views: tuple[str, ...] = ()
    max_lag: int = 10_000
    max_silver_delay_s: float = 300.0
    job_missed_runs: float = 3.0
    job_grace_s: float = 30.0


def ok(check: str, detail: str) -> Result:
    return Result(check, "ok", detail)


def warn(check: str, detail: str) -> Result:
    return Result(check, "warn", detail)


def fail(check: str, detail: str) -> Result:
    return Result(check, "fail", detail)


def ago(seconds: float) -> str:
    """A short human age: 42 s, 7.5 min, 3.2 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
