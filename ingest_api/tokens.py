"""Device bearer tokens: format, SHA-256 storage in ``ops.device_tokens``, create / list / revoke / look up.

Example::

    created = create_token(dsn, name="pos-17", scopes=["ingest"], store_ids=["STORE-001"], device_id="POS-17")
    created.secret                    # "sct_…": shown once; only sha256(secret) is stored
    revoke_token(dsn, created.id)     # the next request with it is 401
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, get_args

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from scout.db import q

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)
PREFIX = "sct_"
TOKEN_PATTERN = re.compile(r"sct_[A-Za-z0-9_-]{43}")
DISPLAY_CHARS = 12


def new_secret() -> str:
    """A fresh token: ``sct_`` and 32 random bytes in URL-safe base64 (256 bits, no padding)."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(secret: str) -> str:
    """What is stored and looked up: SHA-256 (hex). Tokens are random, so no slow hash is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


def well_formed(secret: str) -> bool:
    return TOKEN_PATTERN.fullmatch(secret) is not None


@dataclass(frozen=True)
class TokenRecord:
    """A token as the API sees it (never the secret)."""

    id: int
    name: str
    scopes: frozenset[str]
    device_id: str | None
    store_ids: frozenset[str] | None  # None: every store
    rate_limit_per_s: float | None  # None: the API's default
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TokenRecord:
        limit = row["rate_limit_per_s"]
        stores = row["store_ids"]
        return cls(
            id=int(row["id"]),
            name=row["name"],
            scopes=frozenset(row["scopes"]),
            device_id=row["device_id"],
            store_ids=frozenset(stores) if stores is not None else None,
            rate_limit_per_s=float(limit) if limit is not None else None,
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )


@dataclass(frozen=True)
class CreatedToken:
    id: int
    name: str
    secret: str
    created_at: datetime


class TokenStore:
    """Token look-ups for the API from PostgreSQL; no caching, so a revocation counts at once."""

    def __init__(self, pool: AsyncConnectionPool, *, timeout_s: float = 2.0) -> None:
        self.pool = pool
        self.timeout_s = timeout_s

    async def lookup(self, token_hash_hex: str) -> TokenRecord | None:
        async with self.pool.connection(timeout=self.timeout_s) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(q("token_by_hash"), {"token_hash": token_hash_hex})
            row = await cur.fetchone()
        return TokenRecord.from_row(row) if row is not None else None

    async def touch(self, token_id: int) -> None:
        """Note the token's last use (at most once a minute in the database)."""
        async with self.pool.connection(timeout=self.timeout_s) as conn:
            await conn.execute(q("token_touch"), {"id": token_id})


def _validate(name: str, scopes: Sequence[str], store_ids: Sequence[str] | None,
              rate_limit_per_s: float | None) -> None:
    if not name.strip():
        raise ValueError("a token needs a name (what device or system holds it)")
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {list(scopes)}")
    if store_ids is not None and not store_ids:
        raise ValueError("give at least one store, or allow all stores")
    if rate_limit_per_s is not None and not 0.01 <= rate_limit_per_s < 10**8:
        raise ValueError("the rate limit must be between 0.01 and 100,000,000 requests/s")


def create_token(dsn: str, *, name: str, scopes: Sequence[str], store_ids: Sequence[str] | None,
                 device_id: str | None = None, rate_limit_per_s: float | None = None,
                 expires_in: timedelta | None = None) -> CreatedToken:
    """Store a new token's hash and return the token itself (the only time it is visible)."""
    _validate(name, scopes, store_ids, rate_limit_per_s)
    secret = new_secret()
    params: dict[str, Any] = {
        "name": name.strip(),
        "token_hash": token_hash(secret),
        "token_prefix": secret[:DISPLAY_CHARS],
        "scopes": sorted(set(scopes)),
        "device_id": device_id,
        "store_ids": sorted(set(store_ids)) if store_ids is not None else None,
        "rate_limit_per_s": Decimal(str(rate_limit_per_s)) if rate_limit_per_s is not None else None,
        "expires_at": datetime.now(UTC) + expires_in if expires_in is not None else None,
    }
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        row = conn.execute(q("token_insert"), params).fetchone()
    assert row is not None
    return CreatedToken(int(row["id"]), params["name"], secret, row["created_at"])


def list_tokens(dsn: str, *, include_revoked: bool = True) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(q("token_list"), {"include_revoked": include_revoked}).fetchall()


def revoke_token(dsn: str, token_id: int) -> bool:
    """Revoke an active token; False when there is no active token with that id."""
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(q("token_revoke"), {"id": token_id}).fetchone() is not None
