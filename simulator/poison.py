"""Poison messages for UAT: bytes no device can send through the API, written straight to the topic.

They check the one fault path the API cannot reach: a message the bronze consumer cannot decode must end in
the dead letters (``ops.dead_letters``, found by its key) and nowhere else, without stopping the stream.

Example::

    messages = poison_messages(seed=42, count=10)       # [(key, value), ...], keys unique per seed
    produce(bootstrap="127.0.0.1:9092", topic="pos.transactions", messages=messages)
"""

from __future__ import annotations

import orjson
from kafka import KafkaProducer

KINDS = ("not_json", "unsupported_schema", "not_an_object")


def poison_messages(seed: int, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` messages cycling through the poison kinds; the key names the run and the message."""
    messages = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        key = f"uat-poison:{seed}:{i}:{kind}".encode()
        value = {
            "not_json": b"{\"transaction_id\": \"TXN-POISON\", \"items\": [",
            "unsupported_schema": orjson.dumps({"schema": "pos.transactions.v0", "version": 0, "n": i}),
            "not_an_object": orjson.dumps([i, "poison"]),
        }[kind]
        messages.append((key, value))
    return messages


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], *, timeout_s: float = 30) -> None:
    """Writes the messages with acks=all and waits for every acknowledgement."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="scout-uat-poison")
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush(timeout=timeout_s)
        for future in futures:
            future.get(timeout=timeout_s)
    finally:
        producer.close(timeout=5)
