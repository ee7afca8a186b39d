"""``scout verify``: is this deployment healthy and complete? Prints each check; exit 1 if any fails."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from scout.settings import Settings


def _checks(settings: Settings) -> list[tuple[str, Callable[[], str]]]:
    def database() -> str:
        import psycopg

        with psycopg.connect(settings.database_dsn(), connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"

    def migrations() -> str:
        from scout.migrate import status

        pending = [m for m in status(settings.database_dsn()) if not m.applied]
        if pending:
            raise RuntimeError(f"{len(pending)} pending migration(s): run `scout migrate`")
        return "all applied"

    def topics() -> str:
        from scout.kafka import admin

        client = admin(settings, timeout_ms=5000)
        try:
            existing = set(client.list_topics())
        finally:
            client.close()
        missing = {settings.topic, settings.dead_letter_topic} - existing
        if missing:
            raise RuntimeError(f"missing topics {sorted(missing)}: `scout up` or your deployment creates them")
        return f"{settings.topic}, {settings.dead_letter_topic}"

    return [("database", database), ("migrations", migrations), ("kafka topics", topics)]


def run_verify(settings: Settings, *, console: Console) -> int:
    failed = 0
    for name, check in _checks(settings):
        try:
            console.print(f"[green]ok[/]   {name}: {check()}")
        except Exception as exc:
            failed += 1
            console.print(f"[red]FAIL[/] {name}: {exc}")
    return 1 if failed else 0
