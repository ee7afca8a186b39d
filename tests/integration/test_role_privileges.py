"""Least privilege over the whole catalogue (a table added later is covered without editing this test):
scout_ingest writes bronze and the API's own ops tables only, no Scout role may create, alter or drop
anything (it owns nothing and has CREATE on no schema), and none holds a role attribute that would lift
those limits. test_migrations.py and test_reader_role.py check single statements; this checks the grants."""

from __future__ import annotations

import psycopg
import pytest

ROLES = ("scout_ingest", "scout_pipeline", "scout_reader")
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# What the API's role may write, and why: bronze (it never does today: Kafka does it), its token use,
# idempotency keys and upload jobs.
INGEST_WRITES = {
    ("bronze", "transactions", "INSERT"),
    ("bronze", "pending", "INSERT"),  # the trigger that queues each landed row for silver runs as the lander
    ("bronze", "event_hashes", "INSERT"),  # so does the one that keeps event_hash unique across every day
    ("ops", "idempotency_keys", "INSERT"), ("ops", "idempotency_keys", "UPDATE"),
    ("ops", "idempotency_keys", "DELETE"),
    ("ops", "upload_jobs", "INSERT"), ("ops", "upload_jobs", "UPDATE"),
    ("ops", "upload_errors", "INSERT"),
}


def _rows(dsn: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _granted_writes(dsn: str, role: str) -> set[tuple[str, str, str]]:
    rows = _rows(
        dsn,
        "SELECT n.nspname, c.relname, p.priv FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN unnest(%s::text[]) AS p (priv) "
        "WHERE n.nspname IN ('bronze', 'silver', 'gold', 'ops', 'public') AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND has_table_privilege(%s, c.oid, p.priv)",
        list(WRITES), role,
    )
    return {(str(s), str(r), str(p)) for s, r, p in rows}


def test_ingest_writes_only_bronze_and_its_own_ops_tables(database: str) -> None:
    assert _granted_writes(database, "scout_ingest") == INGEST_WRITES


def test_reader_writes_nothing(database: str) -> None:
    assert _granted_writes(database, "scout_reader") == set()


def test_pipeline_writes_no_gold_relation_directly_and_no_token(database: str) -> None:
    writes = _granted_writes(database, "scout_pipeline")
    assert {(s, r) for s, r, _ in writes if s == "gold"} == set()  # gold changes only by the refresh function
    assert {(s, r) for s, r, _ in writes if r in ("device_tokens", "idempotency_keys")} == set()
    assert ("silver", "transactions", "INSERT") in writes


@pytest.mark.parametrize("role", ROLES)
def test_no_role_can_change_the_schema(database: str, role: str) -> None:
    owned = _rows(database, "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                            "WHERE r.rolname = %s", role)
    schemas = _rows(database, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%%' "
                              "AND nspname <> 'information_schema' AND has_schema_privilege(%s, oid, 'CREATE')", role)
    functions = _rows(database, "SELECT p.proname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
                                "WHERE r.rolname = %s", role)
    database_create = _rows(database, "SELECT has_database_privilege(%s, current_database(), 'CREATE')", role)
    attributes = _rows(database, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin "
                                 "FROM pg_roles WHERE rolname = %s", role)
    assert owned == [] and functions == []  # ALTER and DROP need ownership
    assert schemas == [], f"{role} may CREATE in {schemas}"
    assert database_create == [(False,)]
    assert attributes == [(False, False, False, False, False)]  # and a login is granted the role, not these


@pytest.mark.parametrize("role", ROLES)
def test_no_role_is_a_member_of_another(database: str, role: str) -> None:
    member_of = _rows(database, "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                                "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", role)
    assert member_of == []
