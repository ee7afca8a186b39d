"""The APScheduler process: every job in jobs.registry on its interval, one instance at a time.

Jobs run in threads (sync psycopg); ``max_instances=1`` and ``coalesce=True`` stop pile-ups, and
advisory locks keep several scheduler replicas from refreshing the same view at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from psycopg_pool import ConnectionPool

from jobs.registry import JOBS, run_job
from scout.settings import Settings

log = logging.getLogger(__name__)


def build_scheduler(settings: Settings, pool: ConnectionPool, scheduler: BaseScheduler | None = None) -> BaseScheduler:
    scheduler = scheduler or BlockingScheduler(timezone="UTC")
    for job in JOBS.values():
        scheduler.add_job(
            run_job, "interval", args=[job.name, pool, settings], id=job.name, name=job.description,
            seconds=job.interval_s(settings), max_instances=1, coalesce=True, misfire_grace_time=30,
            replace_existing=True, next_run_time=datetime.now(UTC),
        )

    def _report(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("scheduler: job %s missed its run time", event.job_id)
        else:
            log.error("scheduler: job %s failed (will run again next interval): %r", event.job_id, event.exception)

    scheduler.add_listener(_report, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler
