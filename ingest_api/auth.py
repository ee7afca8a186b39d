"""Bearer-token authentication for every API route: ``require_scope("ingest" | "read" | "admin")``.

Example::

    @router.get("/v1/things")
    async def things(principal: Annotated[Principal, Depends(require_scope("read"))]) -> ...

The dependency answers 401 (no, unknown, expired or revoked token), 403 (scope missing), 429 with
Retry-After (the token's rate limit, or too many failed attempts from one client address) and 503
(token store unreachable). ``admin`` includes the other scopes. With ``SCOUT_AUTH_REQUIRED=false``
every request is the anonymous principal with every scope and every store.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Protocol

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ingest_api.errors import ApiError
from ingest_api.ratelimit import RateLimiter
from ingest_api.tokens import SCOPES, Scope, TokenRecord, token_hash, well_formed
from observability.metrics import AUTH_FAILURES
from scout.settings import Settings

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="DeviceToken",
    description="A device token from `scout tokens create`: `Authorization: Bearer sct_…`.",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token (or anonymous when auth is off) and what it may do."""

    token_id: int | None
    name: str
    scopes: frozenset[str]
    device_id: str | None = None
    store_ids: frozenset[str] | None = None  # None: every store

    @property
    def owner(self) -> str:
        """The namespace of this caller's Idempotency-Keys."""
        return f"token:{self.token_id}" if self.token_id is not None else "anonymous"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def allows_store(self, store_id: str) -> bool:
        return self.store_ids is None or store_id in self.store_ids

    def allows_device(self, device_id: str | None) -> bool:
        return self.device_id is None or device_id is None or device_id == self.device_id


ANONYMOUS = Principal(token_id=None, name="anonymous", scopes=frozenset(SCOPES))


class TokenLookup(Protocol):
    async def lookup(self, token_hash_hex: str) -> TokenRecord | None: ...

    async def touch(self, token_id: int) -> None: ...


@dataclass
class Authenticator:
    """Per-process authentication state: the token store and the rate-limit buckets."""

    settings: Settings
    tokens: TokenLookup | None
    limiter: RateLimiter = field(default_factory=RateLimiter)
    failures: RateLimiter = field(default_factory=RateLimiter)
    _touched: dict[int, float] = field(default_factory=dict)

    def _fail(self, client: str, reason: str, message: str) -> ApiError:
        AUTH_FAILURES.labels(reason).inc()
        self.failures.acquire(f"client:{client}", rate=self.settings.auth_failure_rate_per_s,
                              burst=self.settings.auth_failure_burst)
        return ApiError(401, "unauthorized", message,
                        headers={"WWW-Authenticate": 'Bearer realm="scout", error="invalid_token"'})

    def _check_failures(self, client: str) -> None:
        wait = self.failures.blocked_for(f"client:{client}", rate=self.settings.auth_failure_rate_per_s,
                                         burst=self.settings.auth_failure_burst)
        if wait > 0:
            AUTH_FAILURES.labels("blocked").inc()
            raise ApiError(429, "too_many_auth_failures",
                           f"too many failed authentications from {client}; retry later",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})

    async def _lookup(self, secret: str) -> TokenRecord | None:
        if self.tokens is None:
            raise ApiError(503, "auth_unavailable", "no token store is configured (SCOUT_DATABASE_URL)",
                           headers={"Retry-After": str(self.settings.retry_after_s)})
        try:
            return await self.tokens.lookup(token_hash(secret))
        except psycopg.Error as exc:
            log.warning("auth: token store unreachable: %r", exc)
            raise ApiError(503, "auth_unavailable", "the token store is unreachable; retry later",
                           headers={"Retry-After": str(self.settings.retry_after_s)}) from None

    async def _touch(self, record: TokenRecord) -> None:
        now = time.monotonic()
        if now - self._touched.get(record.id, -math.inf) < 60:
            return
        if len(self._touched) > 100_000:
            self._touched.clear()
        self._touched[record.id] = now
        assert self.tokens is not None
        try:
            await self.tokens.touch(record.id)
        except psycopg.Error as exc:  # last_used_at is informational; the request itself is fine
            log.warning("auth: could not note the last use of token %d: %r", record.id, exc)

    def _rate_limit(self, record: TokenRecord) -> None:
        rate = record.rate_limit_per_s or self.settings.rate_limit_per_s
        burst = max(1.0, rate * self.settings.rate_limit_burst_s)
        wait = self.limiter.acquire(f"token:{record.id}", rate=rate, burst=burst)
        if wait > 0:
            raise ApiError(429, "rate_limited",
                           f"token {record.id} is over its rate limit of {rate:g} requests/s; retry later",
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})

    async def authenticate(self, request: Request, credentials: HTTPAuthorizationCredentials | None,
                           scope: Scope) -> Principal:
        if not self.settings.auth_required:
            return ANONYMOUS
        client = request.client.host if request.client else "unknown"
        self._check_failures(client)
        if credentials is None:
            raise self._fail(client, "missing", "a bearer token is required: Authorization: Bearer <token>")
        secret = credentials.credentials.strip()
        if not well_formed(secret):
            raise self._fail(client, "malformed", "the bearer token is not a Scout token")
        record = await self._lookup(secret)
        if record is None or not record.usable(datetime.now(UTC)):
            reason = "unknown" if record is None else "revoked" if record.revoked_at else "expired"
            raise self._fail(client, reason, "the bearer token is unknown, expired or revoked")
        principal = Principal(record.id, record.name, record.scopes, record.device_id, record.store_ids)
        if not principal.has_scope(scope):
            AUTH_FAILURES.labels("scope").inc()
            raise ApiError(403, "insufficient_scope", f"token {record.id} lacks the {scope!r} scope")
        self._rate_limit(record)
        await self._touch(record)
        return principal


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the authenticated caller, who must hold ``scope`` (or ``admin``)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; one of {SCOPES}")

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        authenticator: Authenticator = request.app.state.authenticator
        return await authenticator.authenticate(request, credentials, scope)

    dependency.__name__ = f"require_{scope}"
    return dependency
