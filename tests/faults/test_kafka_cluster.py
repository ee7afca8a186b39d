"""A three-broker Apache Kafka cluster loses the broker that leads a partition, under steady load through the API.

The topics have three copies and ``min.insync.replicas`` 2 (Scout's defaults), so an acknowledged transaction is
on two brokers at least: killing one (SIGKILL) loses nothing. The API's producers and the workers' consumers
find the new leaders by themselves; `scout verify` calls the topics under-replicated while the broker is gone
and healthy again once it is back. The error window and the latency of what was acknowledged in the 30 s after
the kill (against the 30 s before) are printed and written to recovery.json (docs/RELIABILITY.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.services.kafka import KafkaCluster
from cli.verify.kafka import connect, replication
from cli.verify.model import Result
from scout.settings import Settings
from tests.conftest import eventually
from tests.faults.harness import Fault, Load, finish, running_stack, steady

pytestmark = [pytest.mark.faults, pytest.mark.faults_extended]


def _leader(settings: Settings, partition: int) -> int:
    client = connect(settings)
    try:
        (topic,) = client.describe_topics([settings.topic])
    finally:
        client.close()
    return int(next(p["leader_id"] for p in topic["partitions"] if p["partition_index"] == partition))


def _replication(settings: Settings) -> Result:
    client = connect(settings)
    try:
        return replication(client, settings)
    finally:
        client.close()


def test_partition_leader_killed(settings: Settings, kafka_cluster: KafkaCluster, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"kafka_bootstrap": kafka_cluster.bootstrap})
    with running_stack(settings) as stack:
        healthy = eventually(lambda: _replication(settings), until=lambda r: r.status == "ok", timeout=60,
                             what="three copies in sync before the fault")
        assert healthy.detail.startswith("3 copies in sync on every partition, min.insync.replicas 2"), healthy
        load = Load(stack, seed=108).start()
        steady(load, after=0, count=150, what="steady load")
        victim = _leader(settings, 0)
        fault = Fault.now()
        kafka_cluster.node(victim).kill()

        steady(load, after=fault.at, count=150, timeout=180, what="transactions accepted after the leader died")
        moved = eventually(lambda: _leader(settings, 0), until=lambda n: n not in (victim, -1), timeout=60,
                           what="partition 0 led by another broker")
        under = eventually(lambda: _replication(settings), until=lambda r: r.status == "fail", timeout=60,
                           what="scout verify to call the topics under-replicated")
        assert "under-replicated" in under.detail and f"broker(s) [{victim}]" in under.detail, under.detail

        kafka_cluster.node(victim).start(keep_data=True)
        back = eventually(lambda: _replication(settings), until=lambda r: r.status == "ok", timeout=180,
                          what="scout verify to pass once the broker is back in sync")
        assert back.detail.startswith("3 copies in sync"), back.detail
        figures = finish(stack, load, fault, tmp_path, "Kafka partition leader SIGKILL (3 brokers)",
                         latency_window_s=30, killed_broker=victim, new_leader=moved)
        survivors = stack.alive()
    assert len(survivors) == 4, survivors  # API, both workers and the scheduler carried on by themselves
    assert figures["acknowledged"] == figures["transactions"]
