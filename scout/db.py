"""Database access: connection pools built from settings, and the named queries.

Example::

    with open_pool(settings, name="jobs") as pool, pool.connection() as conn:
        conn.execute(QUERIES["silver_version"]).fetchone()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from scout.settings import Settings


@cache
def queries() -> dict[str, str]:
    """Named SQL from ``sql/queries``, loaded once per process."""
    from sql import load_queries

    return load_queries()


def q(name: str) -> str:
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in sql/queries") from None


def open_pool(settings: Settings, *, name: str, min_size: int = 1, max_size: int = 4) -> ConnectionPool:
    """A sync pool (autocommit off); the caller closes it (use as a context manager)."""
    return ConnectionPool(
        settings.database_dsn(),
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=True,
        kwargs={"application_name": f"scout-{name}"},
    )


async def open_async_pool(
    settings: Settings, *, name: str, min_size: int = 1, max_size: int = 4
) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        settings.database_dsn(),
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        kwargs={"application_name": f"scout-{name}"},
    )
    await pool.open(wait=False)
    return pool


def connect(settings: Settings, *, autocommit: bool = True) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(settings.database_dsn(), autocommit=autocommit, row_factory=dict_row)


@contextmanager
def try_advisory_lock(conn: psycopg.Connection[Any], key: str) -> Iterator[bool]:
    """Hold the session advisory lock ``key`` on ``conn`` (autocommit) for the block if no one else does;
    yields whether it got it, and releases it afterwards.

    Example::

        with pool.connection() as conn, try_advisory_lock(conn, "scout.gold.daily_sales") as mine:
            if mine:
                ...  # only one process at a time gets here
    """
    row = conn.execute(q("try_advisory_lock"), {"key": key}).fetchone()
    held = bool(row and row[0])
    try:
        yield held
    finally:
        if held:
            conn.execute(q("advisory_unlock"), {"key": key})
