"""Small builders for tests: valid transactions and envelopes, device tokens, what is on a topic."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from ingest_api.tokens import create_token
from scout.contract import Envelope, Transaction
from scout.settings import Settings
from streams.bronze.decode import BronzeRow, Position, decode


def tx_dict(n: int = 1, *, store: str = "STORE-001", total: str | None = None, qty: int = 2,
            price: str = "25.00", **extra: Any) -> dict[str, Any]:
    line = Decimal(price) * qty
    body: dict[str, Any] = {
        "transaction_id": f"TXN-{n:06d}", "store_id": store, "ts": "2026-01-05T10:00:00Z",
        "total_amount": total if total is not None else str(line),
        "items": [{"product_id": f"SKU-{n % 7}", "product_name": f"Product {n % 7}", "qty": qty,
                   "unit_price": price, "line_amount": str(line)}],
    }
    body.update(extra)
    return body


def envelope(body: dict[str, Any], *, source: str = "api") -> Envelope:
    return Envelope.wrap(Transaction.model_validate(body), source=source,  # type: ignore[arg-type]
                         received_at=datetime.now(UTC))


def bronze_row(body: dict[str, Any], offset: int = 0, *, topic: str = "t") -> BronzeRow:
    result = decode(envelope(body).to_bytes(), key=b"k", position=Position(topic, 0, offset))
    assert isinstance(result, BronzeRow), result
    return result


def bearer(dsn: str, *, scopes: tuple[str, ...] = ("ingest",), stores: list[str] | None = None,
           device: str | None = None, rate: float | None = 10_000, name: str = "test device") -> dict[str, str]:
    """Create a device token in the database; the Authorization header that sends it."""
    created = create_token(dsn, name=name, scopes=scopes, store_ids=stores, device_id=device, rate_limit_per_s=rate)
    return {"Authorization": f"Bearer {created.secret}"}


def topic_messages(settings: Settings, *, timeout_ms: int = 3000) -> list[tuple[bytes, dict[str, Any]]]:
    """Every message on the settings' transactions topic, as (key, decoded JSON value)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=timeout_ms)
    partitions = [TopicPartition(settings.topic, p) for p in range(settings.topic_partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    out: list[tuple[bytes, dict[str, Any]]] = []
    if all(end == 0 for end in ends.values()):
        consumer.close()
        return out
    for message in consumer:
        out.append((message.key, orjson.loads(message.value)))
        if all(consumer.position(tp) >= ends[tp] for tp in partitions):
            break
    consumer.close()
    return out


def cli_token(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`scout tokens create ARGS` as a user runs it: (id from stderr, the token alone on stdout)."""
    result = subprocess.run([sys.executable, "-m", "cli.main", "tokens", "create", *args], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    (token,) = result.stdout.split()
    found = re.search(r"token (\d+) ", result.stderr)
    assert found, result.stderr
    return int(found.group(1)), token
