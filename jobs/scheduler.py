"""The APScheduler process: every job in jobs.registry on its interval, one instance at a time.

Jobs run in threads (sync psycopg); ``max_instances=1`` and ``coalesce=True`` stop pile-ups, and
advisory locks keep several scheduler replicas from refreshing the same view at once. A failed run is
recorded in ops.job_runs, logged, and run again after ``job_retry_delay_s`` (or at its next regular
run, whichever comes first).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from psycopg_pool import ConnectionPool

from jobs.registry import JOBS, Job, run_job
from scout.settings import Settings

log = logging.getLogger(__name__)


def build_scheduler(settings: Settings, pool: ConnectionPool, scheduler: BaseScheduler | None = None,
                    jobs: Mapping[str, Job] = JOBS) -> BaseScheduler:
    scheduler = scheduler or BlockingScheduler(timezone="UTC")
    for job in jobs.values():
        scheduler.add_job(
            run_job, "interval", args=[job.name, pool, settings, jobs], id=job.name, name=job.description,
            seconds=job.interval_s(settings), max_instances=1, coalesce=True, misfire_grace_time=30,
            replace_existing=True, next_run_time=datetime.now(UTC),
        )

    def _report(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("scheduler: job %s missed its run time", event.job_id)
            return
        retry_at = datetime.now(UTC) + timedelta(seconds=settings.job_retry_delay_s)
        scheduled = scheduler.get_job(event.job_id)
        if scheduled is not None and scheduled.next_run_time is not None and scheduled.next_run_time > retry_at:
            scheduled.modify(next_run_time=retry_at)
        when = scheduled.next_run_time if scheduled is not None else None
        log.error("scheduler: job %s failed (recorded in ops.job_runs; runs again at %s): %r",
                  event.job_id, when, event.exception)

    scheduler.add_listener(_report, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler
