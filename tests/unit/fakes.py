"""In-memory stand-ins for the API's Kafka publisher, token store and idempotency store (unit tests only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ingest_api.idempotency import Stored
from ingest_api.publisher import Ack
from ingest_api.tokens import TokenRecord, new_secret, token_hash
from scout.contract import Envelope
from scout.errors import PublishUnavailable


class FakePublisher:
    """Records what would go to Kafka; ``down`` makes every publish fail like an unacknowledged send,
    ``ack_only`` acknowledges only that many more envelopes."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.down = False
        self.ack_only: int | None = None

    async def start(self) -> bool:
        return True

    async def stop(self) -> None:
        return None

    async def ready(self) -> str | None:
        return "unreachable" if self.down else None

    async def publish(self, envelope: Envelope) -> Ack:
        (result,) = await self.publish_many([envelope])
        if isinstance(result, PublishUnavailable):
            raise result
        return result

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[Ack | PublishUnavailable]:
        results: list[Ack | PublishUnavailable] = []
        for envelope in envelopes:
            if self.down or self.ack_only == 0:
                results.append(PublishUnavailable(f"Kafka did not acknowledge event_hash={envelope.event_hash}"))
                continue
            self.published.append(envelope)
            results.append(Ack(partition=1, offset=len(self.published) - 1))
            if self.ack_only is not None:
                self.ack_only -= 1
        return results


class FakeTokens:
    """Tokens kept in a dict by hash; ``add`` returns the secret to send."""

    def __init__(self) -> None:
        self.by_hash: dict[str, TokenRecord] = {}
        self.touched: list[int] = []

    def add(self, *, scopes: Sequence[str] = ("ingest",), stores: Sequence[str] | None = None,
            device: str | None = None, rate: float | None = None, revoked: bool = False) -> str:
        secret = new_secret()
        self.by_hash[token_hash(secret)] = TokenRecord(
            id=len(self.by_hash) + 1, name=f"fake-{len(self.by_hash) + 1}", scopes=frozenset(scopes),
            device_id=device, store_ids=frozenset(stores) if stores is not None else None, rate_limit_per_s=rate,
            expires_at=None, revoked_at=datetime.now(UTC) if revoked else None)
        return secret

    async def lookup(self, token_hash_hex: str) -> TokenRecord | None:
        return self.by_hash.get(token_hash_hex)

    async def touch(self, token_id: int) -> None:
        self.touched.append(token_id)


class FakeIdempotency:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Stored] = {}

    async def claim(self, owner: str, key: str, fingerprint: str) -> Stored | None:
        stored = self.rows.get((owner, key))
        if stored is None:
            self.rows[(owner, key)] = Stored(fingerprint, None, None)
        return stored

    async def complete(self, owner: str, key: str, fingerprint: str, status_code: int, body: bytes) -> None:
        self.rows[(owner, key)] = Stored(fingerprint, status_code, body)

    async def release(self, owner: str, key: str, fingerprint: str) -> None:
        self.rows.pop((owner, key), None)
