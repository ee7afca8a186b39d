"""Every SQL panel of every dashboard runs as scout_reader (Grafana's PostgreSQL login) and shows data once the
pipeline has worked: the hand-worked dataset through bronze -> silver, then the scheduled gold-refresh job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from jobs.registry import run_job
from scout.settings import Settings
from tests.dashboards import POSTGRES_UID, Query, queries, sql
from tests.integration import gold_dataset

SQL_QUERIES = [q for q in queries() if q.datasource == POSTGRES_UID]


@pytest.fixture(scope="module")
def worked(postgres) -> str:  # type: ignore[no-untyped-def]
    dsn = postgres.fresh_database()
    gold_dataset.seed(dsn)
    with ConnectionPool(dsn, min_size=1, max_size=2, open=True) as pool:
        for job in ("gold-refresh", "gold-analytics"):  # as the scheduler runs them: core, then analytical views
            run_job(job, pool, Settings(database_url=dsn))  # type: ignore[arg-type]
    return dsn


def test_there_are_sql_panels() -> None:
    assert len(SQL_QUERIES) >= 10
    assert {q.dashboard for q in SQL_QUERIES} >= {"Pipeline overview", "Gold freshness", "Business KPIs"}


@pytest.mark.parametrize("query", SQL_QUERIES, ids=lambda q: q.name)
def test_sql_panel_runs_as_the_reader_and_shows_data(worked: str, query: Query) -> None:
    # The dataset's transactions are from March 2025; the pipeline processed them just now.
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(hours=1)
    with psycopg.connect(worked) as conn:
        conn.execute("SET ROLE scout_reader")
        rows = conn.execute(sql(query, start, end)).fetchall()
    assert rows, f"{query.name}: no rows"
