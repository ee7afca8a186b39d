"""The command line's one settings loader: bad ``SCOUT_*`` variables are a message and exit 2, not a traceback.

Example::

    settings = load_settings()          # every command that needs configuration
    dsn = database_dsn(settings)        # commands that talk to PostgreSQL
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from scout.settings import Settings
from scout.settings import load_settings as _load

err = Console(stderr=True)


def load_settings() -> Settings:
    """Settings from the environment; on a refused variable, print each one with its reason and exit 2."""
    from quality.rules import Thresholds

    try:
        settings = _load()
        Thresholds.from_settings(settings)  # refuses unknown rule names in SCOUT_QUALITY_SEVERITIES
    except ValueError as exc:  # SettingsError, or an unknown rule name
        err.print(f"[red]invalid configuration:[/]\n{escape(str(exc))}\nFix the SCOUT_* environment variables.")
        raise typer.Exit(2) from None
    return settings


def database_dsn(settings: Settings) -> str:
    """``settings.database_dsn()``; when it is not set, say how to set it and exit 2."""
    try:
        return settings.database_dsn()
    except RuntimeError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
