"""On-call's view of the quarantine: list what is held and why, and replay it through silver.

Replaying marks the quarantine rows replayed and queues the bronze rows again (bronze.pending), in one
transaction; the silver loop then processes them again (and quarantines them again if the cause is still there).

Example::

    rows = list_quarantine(conn, reason="over_threshold")
    replayed = replay(conn, reason="over_threshold")      # after raising the threshold
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from scout.db import q


def list_quarantine(conn: psycopg.Connection, *, reason: str | None = None, include_replayed: bool = False,
                    limit: int = 100) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q("quarantine_list"), {"reason": reason, "include_replayed": include_replayed, "limit": limit})
        return cur.fetchall()


def open_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {reason: int(n) for reason, n in conn.execute(q("quarantine_counts")).fetchall()}


def replay(conn: psycopg.Connection, *, ids: list[int] | None = None, reason: str | None = None) -> list[int]:
    """Send open quarantined transactions back through silver; returns their bronze ids."""
    if ids is None and reason is None:
        raise ValueError("name the quarantine ids or a reason to replay")
    with conn.transaction():
        rows = conn.execute(q("quarantine_replay"), {"ids": ids, "reason": reason}).fetchall()
    return [int(r[0]) for r in rows]
