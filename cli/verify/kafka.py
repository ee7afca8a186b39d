"""Kafka checks: the topics with their partitions, and the stream workers' consumer group alive with bounded lag.

The Faust app id (``SCOUT_STREAM_APP_ID``) is the consumer group of every worker's bronze consumer (silver is a
task on the same workers, checked through the bronze backlog in ops). What bronze landed is in PostgreSQL
(``ops.stream_offsets``); the group's committed offsets are only a mirror, used where PostgreSQL has no row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec
from kafka.errors import CoordinatorNotAvailableError

from cli.verify.model import Expected, Result, fail, ok, warn
from scout.kafka import broker_count, plan_replication
from scout.settings import Settings

T = TypeVar("T")
LIVE_STATES = {"Stable", "CompletingRebalance", "PreparingRebalance"}


class VerifyAdmin(KafkaAdminClient):
    """kafka-python's admin client, minus its decoding of authorized operations: it raises on codes it does not
    know (the Tansu broker sends some), and verify never reads them."""

    def _process_acl_operations(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.pop("authorized_operations", None)
        return obj


def connect(settings: Settings, timeout_ms: int = 5000) -> KafkaAdminClient:
    return VerifyAdmin(bootstrap_servers=settings.bootstrap_servers, client_id="scout-verify",
                       request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)


def topics(client: KafkaAdminClient, settings: Settings) -> Result:
    return judge_topics(partition_counts(client, [settings.topic, settings.dead_letter_topic]), settings)


def partition_counts(client: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Topic -> partition count, for the named topics that exist."""
    return {t["name"]: len(t["partitions"]) for t in client.describe_topics(names) if t["error_code"] == 0}


def judge_topics(partitions: Mapping[str, int], settings: Settings) -> Result:
    """``partitions``: topic -> partition count of the topics that exist."""
    missing = [t for t in (settings.topic, settings.dead_letter_topic) if not partitions.get(t)]
    if missing:
        return fail("kafka topics", f"missing {missing}: start the `topics` service or `scout up`, or create "
                                    f"them with {settings.topic_partitions} partitions (SCOUT_TOPIC_PARTITIONS)")
    actual = partitions[settings.topic]
    if actual < settings.topic_partitions:
        return fail("kafka topics", f"{settings.topic} has {actual} partitions, SCOUT_TOPIC_PARTITIONS is "
                                    f"{settings.topic_partitions}: add partitions (kafka-topics.sh --alter) "
                                    "or lower the setting")
    detail = f"{settings.topic} ({actual} partitions), {settings.dead_letter_topic}"
    if actual > settings.topic_partitions:
        return warn("kafka topics", f"{detail}; more partitions than SCOUT_TOPIC_PARTITIONS="
                                    f"{settings.topic_partitions}: align the setting")
    return ok("kafka topics", detail)


@dataclass(frozen=True)
class PartitionReplicas:
    partition: int
    leader: int  # -1: no leader
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class TopicReplicas:
    partitions: tuple[PartitionReplicas, ...]
    min_insync: int | None  # the topic's min.insync.replicas; None when the broker would not say


def replication(client: KafkaAdminClient, settings: Settings) -> Result:
    names = [settings.topic, settings.dead_letter_topic]
    described = {t["name"]: t for t in client.describe_topics(names) if t["error_code"] == 0}
    topics = {name: TopicReplicas(tuple(PartitionReplicas(int(p["partition_index"]), int(p["leader_id"]),
                                                          tuple(p["replica_nodes"]), tuple(p["isr_nodes"]))
                                        for p in sorted(t["partitions"], key=lambda p: p["partition_index"])),
                                  _min_insync(client, name))
              for name, t in described.items()}
    return judge_replication(topics, broker_count(client), settings)


def _min_insync(client: KafkaAdminClient, topic: str) -> int | None:
    try:
        found = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                        configs=["min.insync.replicas"])], config_filter="all")
        return int(found["topic"][topic]["min.insync.replicas"]["value"])
    except Exception:  # a Kafka-compatible broker without DescribeConfigs (Tansu): judged without it
        return None


def judge_replication(topics: Mapping[str, TopicReplicas], brokers: int, settings: Settings) -> Result:
    """Each existing topic of Scout's: every partition led, with the copies Scout asks for
    (``plan_replication`` on this many brokers) all in sync, and ``min.insync.replicas`` as configured. A
    partition with fewer in-sync copies fails: one more lost broker stops acks=all writes, or loses data."""
    check = "kafka replication"
    if not topics:
        return Result(check, "skip", "needs the topics (see the kafka topics check)")
    plan = plan_replication(settings, brokers)
    problems: list[str] = []
    for name, topic in sorted(topics.items()):
        leaderless = [p.partition for p in topic.partitions if p.leader < 0]
        if leaderless:
            problems.append(f"{name} partition(s) {leaderless} have no leader: writes to them fail; start the "
                            "brokers that hold them")
        short = [p for p in topic.partitions if len(p.replicas) < plan.factor]
        if short:
            problems.append(f"{name} has {min(len(p.replicas) for p in short)} cop(ies) on partition(s) "
                            f"{[p.partition for p in short]}, {plan.factor} wanted (SCOUT_TOPIC_REPLICATION_FACTOR="
                            f"{settings.topic_replication_factor}, {brokers} brokers): add replicas with "
                            "kafka-reassign-partitions.sh")
        lagging = [p for p in topic.partitions if len(p.isr) < len(p.replicas)]
        if lagging:
            worst = min(lagging, key=lambda p: len(p.isr))
            out = sorted(set(worst.replicas) - set(worst.isr))
            problems.append(f"{name} is under-replicated: partition {worst.partition} has {len(worst.isr)} of "
                            f"{len(worst.replicas)} copies in sync (broker(s) {out} behind or down; "
                            f"{len(lagging)} partition(s) so); bring those brokers back")
        if topic.min_insync is not None and topic.min_insync < plan.min_insync:
            problems.append(f"{name} has min.insync.replicas={topic.min_insync}, {plan.min_insync} wanted "
                            f"(SCOUT_TOPIC_MIN_INSYNC_REPLICAS): acks=all is acknowledged by fewer copies; "
                            f"kafka-configs.sh --alter --add-config min.insync.replicas={plan.min_insync}")
    if problems:
        return fail(check, "; ".join(problems))
    reported = sorted({t.min_insync for t in topics.values() if t.min_insync is not None})
    waits = f"min.insync.replicas {'/'.join(map(str, reported))}" if reported else \
        "min.insync.replicas not reported by the broker"
    detail = f"{plan.factor} cop{'y' if plan.factor == 1 else 'ies'} in sync on every partition, {waits}"
    if plan.factor < settings.topic_replication_factor:
        detail += (f"; {brokers} broker(s), fewer than SCOUT_TOPIC_REPLICATION_FACTOR="
                   f"{settings.topic_replication_factor}: one copy per broker")
    return ok(check, detail)


@dataclass(frozen=True)
class GroupState:
    state: str
    members: int
    lag: dict[int, int]  # partition -> messages not yet landed in PostgreSQL
    ends: dict[int, int] = field(default_factory=dict)  # partition -> the broker's end offset


def group_state(client: KafkaAdminClient, settings: Settings, landed: Mapping[int, int] | None = None) -> GroupState:
    """The group's members and lag, counted from ``landed`` (partition -> next offset to land, from
    ``ops.stream_offsets``) where PostgreSQL has it, else from the group's committed offset."""
    group = settings.stream_app_id
    described = _retry(lambda: client.describe_groups([group]))[group]
    members = len(described["members"])
    count = partition_counts(client, [settings.topic]).get(settings.topic, 0)
    parts = [TopicPartition(settings.topic, n) for n in range(count)]
    committed = _retry(lambda: client.list_group_offsets({group: parts}))[group]
    ends = client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in parts})
    starts = client.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in parts})
    lag = {tp.partition: _lag(committed.get(tp), starts[tp].offset, ends[tp].offset, (landed or {}).get(tp.partition))
           for tp in parts}
    return GroupState(str(described["group_state"]), members, lag, {tp.partition: int(ends[tp].offset) for tp in parts})


def _retry(call: Callable[[], T], attempts: int = 5) -> T:
    """The group coordinator may not be known yet on a fresh broker: ask again a few times."""
    for attempt in range(attempts):
        try:
            return call()
        except CoordinatorNotAvailableError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _lag(committed: Any, start: int, end: int, landed: int | None = None) -> int:
    if landed is not None:  # PostgreSQL knows: records before the earliest offset are gone, not waiting
        return max(0, end - max(landed, start))
    offset = getattr(committed, "offset", -1) if committed is not None else -1
    position = offset if offset >= 0 else start  # nothing committed: the group starts at the beginning
    return max(0, end - position)  # a broker may under-report its end offset


def judge_bronze_progress(landed: Mapping[int, tuple[int, float]], ends: Mapping[int, int],
                          stall_timeout_s: float) -> Result:
    """``landed``: partition -> (next offset to land, seconds since it last moved). A partition with records
    waiting whose landed offset has not moved for the stall timeout fails."""
    check = "bronze progress"
    if stall_timeout_s <= 0:
        return ok(check, "stall alarm off (SCOUT_CONSUMER_STALL_TIMEOUT_S=0)")
    stalled = {p: (ends[p] - offset, idle) for p, (offset, idle) in sorted(landed.items())
               if ends.get(p, offset) > offset and idle >= stall_timeout_s}
    if stalled:
        worst = ", ".join(f"partition {p}: {n:,} waiting, landed offset unchanged for {idle:.0f} s"
                          for p, (n, idle) in stalled.items())
        return fail(check, f"{worst}: see the worker's log and docs/RUNBOOK.md#bronze-stalled")
    return ok(check, f"{len(landed)} partition(s) landed up to the broker or moving")


def judge_group(group: str, state: GroupState, expected: Expected) -> Result:
    check = "consumer group"
    if state.members == 0 or state.state not in LIVE_STATES:
        return fail(check, f"group {group} has no live member (state {state.state}): no stream worker is "
                           "running; start `scout worker` (compose: the worker service) and check its log")
    if not state.lag:
        return fail(check, f"group {group} has {state.members} member(s) but the topic it reads is missing: "
                           "see the kafka topics check")
    total = sum(state.lag.values())
    worst = max(state.lag.items(), key=lambda item: item[1], default=(0, 0))
    detail = f"group {group}: {state.members} member(s), {state.state}, lag {total:,}"
    if total > expected.max_lag:
        return fail(check, f"{detail} > --max-lag {expected.max_lag:,} (partition {worst[0]}: {worst[1]:,}): "
                           "workers fall behind; add workers (up to the partition count) or see the worker log")
    if state.state != "Stable":
        return warn(check, f"{detail}; rebalancing: run verify again in a few seconds")
    return ok(check, detail)


def consumer_group(client: KafkaAdminClient, settings: Settings, expected: Expected,
                   landed: Mapping[int, tuple[int, float]] | None = None) -> list[Result]:
    """The group's liveness and lag, and bronze's progress on each partition."""
    offsets = {p: o for p, (o, _) in (landed or {}).items()}
    state = group_state(client, settings, offsets)
    results = [judge_group(settings.stream_app_id, state, expected)]
    if landed is not None:
        results.append(judge_bronze_progress(landed, state.ends, settings.consumer_stall_timeout_s))
    return results
