"""The SQL loader: increasing checksummed migrations and every named query the code asks for."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import sql
from sql import load_migrations, load_queries, parse_queries

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("scout", "ingest_api", "streams", "jobs", "quality", "simulator", "observability")
QUERY_CALL = re.compile(r"""\bq\(\s*["']([a-z_][a-z0-9_]*)["']\s*\)""")


def names_used_in_code() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found.update(QUERY_CALL.findall(path.read_text(encoding="utf-8")))
    return found


def test_migrations_run_in_increasing_order_with_checksums() -> None:
    migrations = load_migrations()
    assert len(migrations) >= 1
    assert migrations[0].version == 1
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    for m in migrations:
        assert re.fullmatch(r"[0-9a-f]{64}", m.checksum)
        assert m.sql.strip()
        assert re.fullmatch(r"[a-z0-9_]+", m.name)
    assert len({m.checksum for m in migrations}) == len(migrations)
    assert load_migrations()[0].checksum == migrations[0].checksum  # stable across loads


def _fake_package(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    monkeypatch.setattr(sql, "resources", SimpleNamespace(files=lambda _name: root))


def test_a_free_migration_number_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A number reserved for work not merged yet leaves a gap; the runner applies the others in order."""
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "migrations" / "0003_third.sql").write_text("SELECT 3;")
    (tmp_path / "migrations" / "README.md").write_text("not a migration")
    _fake_package(monkeypatch, tmp_path)
    assert [m.version for m in load_migrations()] == [1, 3]


def test_duplicate_migration_number_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "migrations" / "0001_again.sql").write_text("SELECT 2;")
    _fake_package(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="0001"):
        load_migrations()


def test_queries_cover_every_name_the_code_uses() -> None:
    used = names_used_in_code()
    assert {"claim_bronze", "bronze_insert_from_stage", "insert_transactions_from_stage", "refresh_view",
            "insert_quarantine", "dead_letter_insert"} <= used
    queries = load_queries()
    assert used - set(queries) == set()
    assert all(body and not body.endswith(";") for body in queries.values())


def test_parse_queries_splits_on_name_lines() -> None:
    text = "-- name: first\nSELECT 1;\n\n--name:second_q  \nSELECT\n  2\n;\n"
    assert parse_queries(text) == {"first": "SELECT 1", "second_q": "SELECT\n  2"}
    assert parse_queries("-- just a comment\n") == {}


def test_parse_queries_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="'twice' is defined twice"):
        parse_queries("-- name: twice\nSELECT 1;\n-- name: twice\nSELECT 2;\n")


def test_query_defined_in_two_files_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "a.sql").write_text("-- name: shared\nSELECT 1;\n")
    (tmp_path / "queries" / "b.sql").write_text("-- name: shared\nSELECT 2;\n")
    _fake_package(monkeypatch, tmp_path)
    with pytest.raises(ValueError, match="two files"):
        load_queries()
