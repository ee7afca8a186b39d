"""Apply the numbered migrations of ``sql/migrations``: idempotent, checksummed, one at a time.

Example::

    applied = migrate(dsn)    # -> versions applied now; [] when already up to date
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from scout.errors import TerminalError
from sql import Migration, load_migrations

_LOCK_KEY = 5_300_001  # one migrator at a time per database

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   char(64)    NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class MigrationChanged(TerminalError):
    """An applied migration's file differs from what was applied."""


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str
    applied: bool


def _applied(conn: psycopg.Connection) -> dict[int, str]:
    rows = conn.execute("SELECT version, checksum FROM ops.schema_migrations").fetchall()
    return {int(version): str(checksum) for version, checksum in rows}


def _verify(migrations: list[Migration], applied: dict[int, str]) -> None:
    known = {m.version for m in migrations}
    for migration in migrations:
        checksum = applied.get(migration.version)
        if checksum is not None and checksum != migration.checksum:
            raise MigrationChanged(
                f"migration {migration.version:04d}_{migration.name} was changed after it was applied "
                f"(applied checksum {checksum[:12]}, file {migration.checksum[:12]}); "
                "add a new migration instead of editing an applied one"
            )
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationChanged(f"database has migrations this code does not know: {unknown}")


def migrate(dsn: str) -> list[int]:
    """Apply pending migrations, each in its own transaction; return the versions applied."""
    migrations = load_migrations()
    done: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            conn.execute(_BOOTSTRAP)
            applied = _applied(conn)
            _verify(migrations, applied)
            for migration in migrations:
                if migration.version in applied:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO ops.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        [migration.version, migration.name, migration.checksum],
                    )
                done.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    return done


def status(dsn: str) -> list[MigrationStatus]:
    migrations = load_migrations()
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('ops.schema_migrations') IS NOT NULL").fetchone()
        applied = _applied(conn) if exists and exists[0] else {}
    _verify(migrations, applied)
    return [MigrationStatus(m.version, m.name, m.version in applied) for m in migrations]
