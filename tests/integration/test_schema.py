"""The migrations build exactly the declared schema ``sql/schema.sql``, and a drifted migration is caught."""

from __future__ import annotations

import pytest

import scout.migrate
from cli.schema_dump import REGENERATE, SCHEMA_FILE, dump_schema, schema_diff
from sql import Migration, load_migrations
from tests.services import Postgres


def _declared() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


def test_migrations_build_the_declared_schema(postgres: Postgres) -> None:
    dsn = postgres.fresh_database(migrated=False)
    scout.migrate.migrate(dsn)
    diff = schema_diff(_declared(), dump_schema(dsn))
    assert not diff, f"\n{diff}\nsql/schema.sql differs from the migrations; regenerate it: {REGENERATE}"


def test_a_migration_that_drifts_from_the_declared_schema_is_named_in_the_diff(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = load_migrations()
    drift = Migration(migrations[-1].version + 1, "drift", "ALTER TABLE silver.stores ADD COLUMN drift_probe integer;")
    monkeypatch.setattr(scout.migrate, "load_migrations", lambda: [*migrations, drift])
    dsn = postgres.fresh_database(migrated=False)
    assert scout.migrate.migrate(dsn)[-1] == drift.version

    diff = schema_diff(_declared(), dump_schema(dsn))

    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == [  # pg_dump adds a comma to the column before it
        "-    first_seen timestamp with time zone DEFAULT now() NOT NULL",
        "+    first_seen timestamp with time zone DEFAULT now() NOT NULL,",
        "+    drift_probe integer",
    ], diff
    assert "@@ stores; Type: TABLE; Schema: silver\n" in diff  # the hunk names the object it changes
