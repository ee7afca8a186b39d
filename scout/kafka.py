"""Kafka helpers shared by every stage: topic creation with its replication, and an admin client (kafka-python).

Example::

    made = ensure_topics(settings)   # creates the transactions and dead-letter topics if missing
    made.created, made.replication.note   # ['pos.transactions.v1', ...], '3 copies, acks=all waits for 2 ...'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from scout.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replication:
    """What Scout's topics get on a cluster of ``brokers``: copies per partition and ``min.insync.replicas``."""

    factor: int
    min_insync: int
    brokers: int
    configured: int

    @property
    def note(self) -> str:
        copies = f"{self.factor} cop{'y' if self.factor == 1 else 'ies'} per partition, acks=all waits for " \
                 f"{self.min_insync}"
        if self.factor < self.configured:
            return (f"{copies}: the cluster has {self.brokers} broker(s), fewer than SCOUT_TOPIC_REPLICATION_FACTOR="
                    f"{self.configured}; a lost broker disk loses acknowledged transactions")
        return copies


def plan_replication(settings: Settings, brokers: int) -> Replication:
    """The configured replication, capped by the brokers there are, so one broker still works (with one copy).

    >>> plan_replication(Settings(), 1).factor, plan_replication(Settings(), 3).min_insync
    (1, 2)
    """
    factor = max(1, min(settings.topic_replication_factor, brokers))
    return Replication(factor, min(settings.topic_min_insync_replicas, factor), brokers,
                       settings.topic_replication_factor)


@dataclass(frozen=True)
class Topics:
    created: list[str]
    replication: Replication


def admin(settings: Settings, *, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="scout-admin",
        request_timeout_ms=timeout_ms,
    )


def broker_count(client: KafkaAdminClient) -> int:
    """Brokers in the cluster's metadata, as the broker this client asks knows them."""
    return len(client.describe_cluster()["brokers"])


def cluster_size(settings: Settings, *, timeout_ms: int = 5000) -> int:
    """The most brokers any bootstrap server knows: one broker's metadata may lag behind a broker that just
    registered, and a topic created then would silently get fewer copies."""
    counts = []
    for server in settings.bootstrap_servers:
        try:
            client = KafkaAdminClient(bootstrap_servers=[server], client_id="scout-admin",
                                      request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)
        except KafkaError:  # that one is down; the others answer
            continue
        try:
            counts.append(broker_count(client))
        except KafkaError:
            pass
        finally:
            client.close()
    if not counts:
        raise KafkaConnectionError(f"no broker answers at {settings.kafka_bootstrap}")
    return max(counts)


def ensure_topics(settings: Settings, *, timeout_ms: int = 15_000) -> Topics:
    """Create Scout's topics when missing, replicated as ``plan_replication`` says; returns what it did."""
    wanted = {settings.topic: settings.topic_partitions, settings.dead_letter_topic: 1}
    client = admin(settings, timeout_ms=timeout_ms)
    try:
        replication = plan_replication(settings, cluster_size(settings))
        # a single copy needs no topic config (and a broker such as Tansu may not take one)
        configs = {"min.insync.replicas": str(replication.min_insync)} if replication.factor > 1 else {}
        existing = set(client.list_topics())
        missing = [NewTopic(name, n, replication.factor, topic_configs=configs)
                   for name, n in wanted.items() if name not in existing]
        created: list[str] = []
        for topic in missing:  # one by one: a concurrent creator must not fail the others
            try:
                client.create_topics([topic], timeout_ms=timeout_ms)
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics %s: %s", created, replication.note)
        return Topics(created, replication)
    finally:
        client.close()
