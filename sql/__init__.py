"""Scout's SQL: numbered migrations (``sql/migrations``) and named queries (``sql/queries``).

Example::

    from sql import load_migrations, load_queries
    q = load_queries()
    conn.execute(q["upsert_stores"], {"store_ids": ["STORE-001"]})

A query file holds blocks that start with ``-- name: NAME``; the text up to the next such line is
the query. Files are read once per call; callers keep the result.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """All migrations in version order; refuses duplicate numbers (a number may be free: reserved for a branch
    not merged yet)."""
    found: list[Migration] = []
    for entry in resources.files(__name__).joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for before, migration in itertools.pairwise(found):
        if migration.version == before.version:
            raise ValueError(f"migration number {migration.version:04d} is used twice")
    return found


def parse_queries(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";").strip()
    return queries


def load_queries() -> dict[str, str]:
    """Every named query of every file in ``sql/queries``."""
    queries: dict[str, str] = {}
    for entry in sorted(resources.files(__name__).joinpath("queries").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, body in parse_queries(entry.read_text(encoding="utf-8")).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined in two files")
            queries[name] = body
    return queries
