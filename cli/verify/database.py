"""Database checks: reachable, migrations current, and the three Scout roles with least-privilege grants.

The catalogue is read once (``verify_relation_grants``, ``verify_schema_grants``); the judging is pure
(``judge_roles``) so it is tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cli.verify.model import Result, fail, ok
from scout.db import q

ROLES = ("scout_ingest", "scout_pipeline", "scout_reader")
FIX_GRANTS = "run `scout migrate` (the grants are in sql/migrations) and REVOKE what was granted by hand"


def database(conn: psycopg.Connection[Any]) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q("verify_server")).fetchone()
    assert row is not None
    return ok("database", f"PostgreSQL {row['version']}, database {row['database']} as {row['login']}")


def migrations(dsn: str) -> Result:
    from scout.migrate import MigrationChanged, status

    try:
        pending = [m for m in status(dsn) if not m.applied]
    except MigrationChanged as exc:
        return fail("migrations", f"{exc}")
    if pending:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending[:3])
        return fail("migrations", f"{len(pending)} pending ({names}): run `scout migrate`")
    return ok("migrations", "all applied")


def roles(conn: psycopg.Connection[Any]) -> Result:
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(q("verify_roles"), {"roles": list(ROLES)}).fetchall()
        relations = cur.execute(q("verify_relation_grants"), {"roles": list(ROLES)}).fetchall()
        schemas = cur.execute(q("verify_schema_grants"), {"roles": list(ROLES)}).fetchall()
    return judge_roles(found, relations, schemas)


def judge_roles(found: Iterable[Mapping[str, Any]], relations: Iterable[Mapping[str, Any]],
                schemas: Iterable[Mapping[str, Any]]) -> Result:
    """Each role exists, is no superuser, and holds what it needs and nothing that breaks least privilege."""
    by_role = {r["role"]: r for r in found}
    missing = [role for role in ROLES if role not in by_role]
    if missing:
        return fail("roles and grants", f"missing roles {missing}: run `scout migrate` (0001 creates them)")
    problems = [f"{role} is a superuser or may create roles/databases" for role, r in by_role.items()
                if r["superuser"] or r["createrole"] or r["createdb"]]
    rels = list(relations)
    problems += _ingest(rels) + _reader(rels) + _pipeline(rels, list(schemas))
    if problems:
        shown = "; ".join(problems[:4]) + (f"; +{len(problems) - 4} more" if len(problems) > 4 else "")
        return fail("roles and grants", f"{shown}: {FIX_GRANTS}")
    return ok("roles and grants", "scout_ingest writes bronze (not silver/gold), scout_reader reads gold only, "
                                  "scout_pipeline owns nothing and cannot create in any schema")


def _names(rows: Iterable[Mapping[str, Any]]) -> str:
    names = sorted(f"{r['schema']}.{r['name']}" for r in rows)
    return ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")


def _of(rels: list[Mapping[str, Any]], role: str, *schemas: str) -> list[Mapping[str, Any]]:
    return [r for r in rels if r["role"] == role and r["schema"] in schemas]


def _ingest(rels: list[Mapping[str, Any]]) -> list[str]:
    problems = []
    for name in ("transactions", "pending"):  # a landing also queues its rows for silver (bronze.pending)
        bronze = [r for r in _of(rels, "scout_ingest", "bronze") if r["name"] == name]
        if not bronze or not bronze[0]["can_write"]:
            problems.append(f"scout_ingest cannot write bronze.{name}")
    writes = [r for r in _of(rels, "scout_ingest", "silver", "gold") if r["can_write"]]
    if writes:
        problems.append(f"scout_ingest may write {_names(writes)}")
    return problems


def _reader(rels: list[Mapping[str, Any]]) -> list[str]:
    problems = []
    gold = _of(rels, "scout_reader", "gold")
    unreadable = [r for r in gold if not r["can_read"]]
    if not gold:
        problems.append("no gold relations: run `scout migrate`")
    if unreadable:
        problems.append(f"scout_reader cannot read {_names(unreadable)}")
    beyond = [r for r in _of(rels, "scout_reader", "bronze", "silver", "ops") if r["can_read"] or r["can_write"]]
    beyond += [r for r in gold if r["can_write"]]
    if beyond:
        problems.append(f"scout_reader may reach {_names(beyond)}")
    return problems


def _pipeline(rels: list[Mapping[str, Any]], schemas: list[Mapping[str, Any]]) -> list[str]:
    problems = []
    tables = [r for r in _of(rels, "scout_pipeline", "bronze", "silver") if r["kind"] in {"r", "p"}]
    if not tables:
        problems.append("no bronze or silver tables: run `scout migrate`")
    elif any(not r["can_write"] for r in tables):
        problems.append(f"scout_pipeline cannot write {_names(r for r in tables if not r['can_write'])}")
    owned = [r for r in rels if r["role"] == "scout_pipeline" and r["owns"]]
    if owned:
        problems.append(f"scout_pipeline owns {_names(owned)} (it could ALTER or DROP them)")
    create = sorted(s["schema"] for s in schemas if s["role"] == "scout_pipeline" and (s["can_create"] or s["owns"]))
    if create:
        problems.append(f"scout_pipeline may create objects in schema {', '.join(create)}")
    return problems
