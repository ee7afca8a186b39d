"""POST /v1/simulator/start|stop and GET /v1/simulator/status: the always-on UAT feed (scope ``admin``).

The feed runs in the API process that answered ``start`` (with several uvicorn workers, each has its own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ingest_api.auth import require_scope
from ingest_api.errors import ApiError
from ingest_api.openapi import error_responses
from simulator.feed import Feed, FeedParams, FeedRunning

router = APIRouter(prefix="/v1/simulator", tags=["simulator"], dependencies=[Depends(require_scope("admin"))])


class StartFeed(BaseModel):
    rate: Annotated[float, Field(gt=0, le=5000, description="Transactions per second")] = 10.0
    seed: int = 42
    faults: Annotated[str, Field(max_length=1000, description='e.g. "exact_resend=0.05,bad_total=0.01"')] = ""
    duration_s: Annotated[float | None, Field(gt=0, description="Stop by itself after this long")] = None
    clock: Annotated[Literal["live", "simulated"], Field(
        description="`live`: transactions carry the current time and advance at real time; `simulated`: the "
                    "deterministic clock of the seed (from 2026-01-05 00:00 UTC, a simulated day per 12,000 "
                    "transactions), for repeatable runs")] = "live"


class FeedStatus(BaseModel):
    running: bool
    params: dict[str, Any] | None
    started_at: datetime | None
    elapsed_s: float
    transactions: int
    published: int
    rejected: int
    errors: int
    achieved_rate: float
    last_error: str | None


async def _feed(request: Request) -> Feed:
    feed: Feed = request.app.state.feed
    return feed


FeedDep = Annotated[Feed, Depends(_feed)]


@router.post("/start", response_model=FeedStatus, status_code=202, summary="Start the UAT feed",
             responses=error_responses(401, 403, 409, 422, 429, 503))
async def start(body: StartFeed, feed: FeedDep) -> FeedStatus:
    try:
        feed.start(FeedParams(rate=body.rate, seed=body.seed, faults=body.faults, duration_s=body.duration_s,
                               clock=body.clock))
    except FeedRunning as exc:
        raise ApiError(409, "feed_running", str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_faults", str(exc), details=[{"field": "faults", "reason": str(exc)}]) from None
    return FeedStatus.model_validate(feed.status())


@router.post("/stop", response_model=FeedStatus, summary="Stop the UAT feed",
             responses=error_responses(401, 403, 409, 429, 503))
async def stop(feed: FeedDep) -> FeedStatus:
    if not await feed.stop():
        raise ApiError(409, "feed_not_running", "no simulator feed is running")
    return FeedStatus.model_validate(feed.status())


@router.get("/status", response_model=FeedStatus, summary="The UAT feed's state and counts",
            responses=error_responses(401, 403, 429, 503))
async def status(feed: FeedDep) -> FeedStatus:
    return FeedStatus.model_validate(feed.status())
