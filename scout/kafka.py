"""Kafka helpers shared by every stage: topic creation and a readiness probe (kafka-python admin).

Example::

    ensure_topics(settings)     # creates the transactions and dead-letter topics if missing
"""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from scout.settings import Settings


def admin(settings: Settings, *, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="scout-admin",
        request_timeout_ms=timeout_ms,
    )


def ensure_topics(settings: Settings, *, timeout_ms: int = 15_000) -> list[str]:
    """Create Scout's topics when missing; returns the names created now."""
    wanted = {settings.topic: settings.topic_partitions, settings.dead_letter_topic: 1}
    client = admin(settings, timeout_ms=timeout_ms)
    try:
        existing = set(client.list_topics())
        missing = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        created: list[str] = []
        for topic in missing:  # one by one: a concurrent creator must not fail the others
            try:
                client.create_topics([topic], timeout_ms=timeout_ms)
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        client.close()
