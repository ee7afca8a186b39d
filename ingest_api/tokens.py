"""Device bearer tokens: format, SHA-256 storage in ``ops.device_tokens``, create / list / revoke / look up.

Example::

    created = create_token(dsn, name="pos-17", scopes=["ingest"], store_ids=["STORE-001"], device_id="POS-17")
    created.secret                    # "sct_…": shown once; only sha256(secret) is stored
    revoke_token(dsn, created.id)     # the next request with it is 401
"""

from __future__ import annotations

import asyncio
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
    """Token look-ups for the API from PostgreSQL (``TokenCache`` keeps what they find while it hears of changes).

    Concurrent look-ups share one query: a look-up waits for the next query that starts after it was
    asked (never one already sent), so every request still reads its token's row as it is after any
    revocation that committed before the request arrived — in one round trip per batch, not three per
    request (checkout, BEGIN, SELECT, COMMIT).
    """

    def __init__(self, pool: AsyncConnectionPool, *, timeout_s: float = 2.0) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self._waiting: dict[str, list[asyncio.Future[TokenRecord | None]]] = {}
        self._drainer: asyncio.Task[None] | None = None

    async def lookup(self, token_hash_hex: str) -> TokenRecord | None:
        future: asyncio.Future[TokenRecord | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(token_hash_hex, []).append(future)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Query for everything asked so far, then for what was asked meanwhile, until nothing waits."""
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                found = await self._fetch(list(batch))
            except Exception as exc:  # every waiter of this batch gets the error (the API answers 503)
                failure = exc if isinstance(exc, psycopg.Error) else psycopg.OperationalError(repr(exc))
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(failure)
                continue
            for hash_hex, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(hash_hex))

    async def _fetch(self, hashes: list[str]) -> dict[str, TokenRecord]:
        async with asyncio.timeout(self.timeout_s), self.pool.connection(timeout=self.timeout_s) as conn:
            await conn.set_autocommit(True)  # one statement: no BEGIN and COMMIT round trips
            try:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(q("tokens_by_hash"), {"token_hashes": hashes})
                rows = await cur.fetchall()
            finally:
                await conn.set_autocommit(False)
        return {str(row["token_hash"]): TokenRecord.from_row(row) for row in rows}

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
