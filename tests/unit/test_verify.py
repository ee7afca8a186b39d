"""The decisions of `scout verify`: each family's judge turns catalogue, Kafka and ops facts into ok/warn/fail
with a detail naming the cause and what to do."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka.structs import OffsetAndMetadata
from rich.console import Console

from cli.verify import report
from cli.verify.alerts import judge_alerts
from cli.verify.database import ROLES, judge_roles
from cli.verify.kafka import (
    GroupState,
    PartitionReplicas,
    TopicReplicas,
    _lag,
    judge_bronze_progress,
    judge_group,
    judge_replication,
    judge_topics,
)
from cli.verify.model import Expected, Result
from cli.verify.scheduler import allowed_age_s, judge_jobs
from cli.verify.stages import judge_backlog, judge_gold
from scout.settings import Settings

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = Settings(topic="tx", dead_letter_topic="dlq", topic_partitions=3)
EXPECTED = Expected(job_intervals_s={"gold-refresh": 10.0, "retention": 3600.0},
                    gold_views=("gold.a", "gold.b"), max_lag=100, max_silver_delay_s=60)


# --- roles and grants -------------------------------------------------------------------------------


def _role(role: str, **flags: bool) -> dict[str, Any]:
    return {"role": role, "superuser": False, "createrole": False, "createdb": False, **flags}


def _rel(role: str, schema: str, name: str, *, read: bool = False, write: bool = False, kind: str = "r",
         owns: bool = False) -> dict[str, Any]:
    return {"role": role, "schema": schema, "name": name, "kind": kind, "can_read": read, "can_write": write,
            "owns": owns}


def _least_privilege() -> list[dict[str, Any]]:
    return [
        _rel("scout_ingest", "bronze", "transactions", read=True, write=True),
        _rel("scout_ingest", "bronze", "pending", read=True, write=True),
        _rel("scout_ingest", "silver", "transactions"),
        _rel("scout_ingest", "gold", "sales", kind="m"),
        _rel("scout_ingest", "ops", "idempotency_keys", read=True, write=True),
        _rel("scout_pipeline", "bronze", "transactions", read=True, write=True),
        _rel("scout_pipeline", "silver", "transactions", read=True, write=True),
        _rel("scout_pipeline", "gold", "sales", read=True, kind="m"),
        _rel("scout_reader", "bronze", "transactions"),
        _rel("scout_reader", "silver", "transactions"),
        _rel("scout_reader", "gold", "sales", read=True, kind="m"),
        _rel("scout_reader", "ops", "job_runs"),
    ]


def _schemas(create: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    return [{"schema": s, "role": r, "owns": False, "can_create": r == "scout_pipeline" and s in create}
            for s in ("public", "bronze", "silver", "gold", "ops") for r in ROLES]


def _replace(rels: list[dict[str, Any]], role: str, name: str, schema: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**r, **changes} if (r["role"], r["schema"], r["name"]) == (role, schema, name) else r for r in rels]


def test_least_privilege_grants_pass() -> None:
    result = judge_roles([_role(r) for r in ROLES], _least_privilege(), _schemas())
    assert result.status == "ok", result.detail


def test_a_missing_role_fails_and_says_to_migrate() -> None:
    result = judge_roles([_role("scout_ingest"), _role("scout_reader")], _least_privilege(), _schemas())
    assert result.status == "fail"
    assert "scout_pipeline" in result.detail and "scout migrate" in result.detail


@pytest.mark.parametrize(("rels", "expected"), [
    (_replace(_least_privilege(), "scout_ingest", "transactions", "silver", can_write=True),
     "scout_ingest may write silver.transactions"),
    (_replace(_least_privilege(), "scout_ingest", "transactions", "bronze", can_write=False),
     "scout_ingest cannot write bronze.transactions"),
    (_replace(_least_privilege(), "scout_ingest", "pending", "bronze", can_write=False),
     "scout_ingest cannot write bronze.pending"),
    (_replace(_least_privilege(), "scout_reader", "sales", "gold", can_read=False),
     "scout_reader cannot read gold.sales"),
    (_replace(_least_privilege(), "scout_reader", "transactions", "silver", can_read=True),
     "scout_reader may reach silver.transactions"),
    (_replace(_least_privilege(), "scout_pipeline", "sales", "gold", owns=True),
     "scout_pipeline owns gold.sales"),
    (_replace(_least_privilege(), "scout_pipeline", "transactions", "silver", can_write=False),
     "scout_pipeline cannot write silver.transactions"),
])
def test_each_grant_violation_is_named(rels: list[dict[str, Any]], expected: str) -> None:
    result = judge_roles([_role(r) for r in ROLES], rels, _schemas())
    assert result.status == "fail"
    assert expected in result.detail
    assert "scout migrate" in result.detail


def test_pipeline_role_that_can_create_in_a_schema_fails() -> None:
    schemas = _schemas(create=frozenset({"silver", "public"}))
    result = judge_roles([_role(r) for r in ROLES], _least_privilege(), schemas)
    assert result.status == "fail"
    assert "scout_pipeline may create objects in schema public, silver" in result.detail


def test_a_superuser_role_fails() -> None:
    found = [_role("scout_ingest"), _role("scout_pipeline", superuser=True), _role("scout_reader")]
    result = judge_roles(found, _least_privilege(), _schemas())
    assert result.status == "fail" and "scout_pipeline is a superuser" in result.detail


# --- Kafka -----------------------------------------------------------------------------------------


def test_topics_with_the_configured_partitions_pass() -> None:
    assert judge_topics({"tx": 3, "dlq": 1}, SETTINGS).status == "ok"


def test_a_missing_topic_fails_with_the_partition_count_to_create() -> None:
    result = judge_topics({"tx": 3}, SETTINGS)
    assert result.status == "fail"
    assert "['dlq']" in result.detail and "3 partitions" in result.detail


def test_fewer_partitions_than_configured_fail_more_warn() -> None:
    fewer = judge_topics({"tx": 1, "dlq": 1}, SETTINGS)
    assert fewer.status == "fail" and "has 1 partitions, SCOUT_TOPIC_PARTITIONS is 3" in fewer.detail
    assert judge_topics({"tx": 6, "dlq": 1}, SETTINGS).status == "warn"


def _replicated(copies: int, in_sync: int | None = None, *, partitions: int = 3, min_insync: int | None = 2,
                leader: int = 1) -> TopicReplicas:
    replicas = tuple(range(1, copies + 1))
    isr = replicas[: copies if in_sync is None else in_sync]
    return TopicReplicas(tuple(PartitionReplicas(p, leader, replicas, isr) for p in range(partitions)), min_insync)


def test_three_copies_in_sync_on_three_brokers_pass() -> None:
    result = judge_replication({"tx": _replicated(3), "dlq": _replicated(3, partitions=1)}, 3, SETTINGS)
    assert result.status == "ok", result.detail
    assert "3 copies in sync on every partition, min.insync.replicas 2" in result.detail


def test_one_broker_passes_with_one_copy_and_says_so() -> None:
    result = judge_replication({"tx": _replicated(1, min_insync=1), "dlq": _replicated(1, min_insync=1)}, 1,
                               SETTINGS)
    assert result.status == "ok", result.detail
    assert "1 copy" in result.detail and "1 broker(s), fewer than SCOUT_TOPIC_REPLICATION_FACTOR=3" in result.detail


def test_fewer_copies_in_sync_than_replicas_fail_naming_the_broker() -> None:
    result = judge_replication({"tx": _replicated(3, in_sync=2), "dlq": _replicated(3)}, 3, SETTINGS)
    assert result.status == "fail"
    assert "tx is under-replicated: partition 0 has 2 of 3 copies in sync (broker(s) [3]" in result.detail


def test_a_topic_with_fewer_copies_than_configured_fails_on_a_cluster() -> None:
    result = judge_replication({"tx": _replicated(1, min_insync=1), "dlq": _replicated(3)}, 3, SETTINGS)
    assert result.status == "fail"
    assert "tx has 1 cop(ies)" in result.detail and "3 wanted" in result.detail
    assert "min.insync.replicas=1, 2 wanted" in result.detail


def test_a_partition_without_a_leader_fails() -> None:
    result = judge_replication({"tx": _replicated(3, leader=-1), "dlq": _replicated(3)}, 3, SETTINGS)
    assert result.status == "fail" and "have no leader" in result.detail


def test_replication_waits_for_the_topics() -> None:
    assert judge_replication({}, 3, SETTINGS).status == "skip"


def test_a_group_without_members_fails_naming_the_workers() -> None:
    result = judge_group("scout", GroupState("Empty", 0, {0: 0}), EXPECTED)
    assert result.status == "fail"
    assert "no live member" in result.detail and "scout worker" in result.detail


def test_lag_over_the_bound_fails_and_names_the_worst_partition() -> None:
    result = judge_group("scout", GroupState("Stable", 2, {0: 10, 1: 95, 2: 0}), EXPECTED)
    assert result.status == "fail"
    assert "lag 105" in result.detail and "partition 1: 95" in result.detail


def test_a_group_whose_topic_is_missing_points_at_the_topics_check() -> None:
    result = judge_group("scout", GroupState("Stable", 1, {}), EXPECTED)
    assert result.status == "fail" and "see the kafka topics check" in result.detail


def test_a_stable_group_within_the_bound_passes_and_a_rebalance_warns() -> None:
    assert judge_group("scout", GroupState("Stable", 1, {0: 100}), EXPECTED).status == "ok"
    assert judge_group("scout", GroupState("PreparingRebalance", 1, {0: 0}), EXPECTED).status == "warn"


def test_lag_counts_from_the_offset_landed_in_postgresql_and_from_the_commit_only_without_one() -> None:
    committed = OffsetAndMetadata(100, "", -1)
    assert _lag(committed, 0, 120) == 20
    assert _lag(None, 0, 120) == 120
    assert _lag(committed, 0, 120, landed=70) == 50  # 70..99 committed, never landed
    assert _lag(committed, 0, 120, landed=110) == 10  # the commit is only a mirror
    assert _lag(None, 10, 120, landed=5) == 110  # records before the earliest offset are gone, not waiting


def test_bronze_progress_fails_a_partition_with_records_waiting_that_does_not_move() -> None:
    ends = {0: 100, 1: 50, 2: 80}
    fine = judge_bronze_progress({0: (100, 900.0), 1: (40, 3.0), 2: (80, 0.0)}, ends, 30)
    assert fine.status == "ok"  # 0: all landed (idle is fine), 1: moving
    stuck = judge_bronze_progress({0: (100, 900.0), 1: (40, 45.0)}, ends, 30)
    assert stuck.status == "fail" and "partition 1: 10 waiting, landed offset unchanged for 45 s" in stuck.detail
    assert "RUNBOOK.md#bronze-stalled" in stuck.detail
    assert judge_bronze_progress({1: (40, 45.0)}, ends, 0).status == "ok"


# --- silver and gold -------------------------------------------------------------------------------


def test_silver_backlog() -> None:
    assert judge_backlog(0, None, NOW, EXPECTED).status == "ok"
    assert judge_backlog(500, NOW - timedelta(seconds=5), NOW, EXPECTED).status == "ok"
    late = judge_backlog(500, NOW - timedelta(seconds=61), NOW, EXPECTED)
    assert late.status == "fail" and "500 bronze row(s) waiting" in late.detail


def _view(name: str, **changes: Any) -> dict[str, Any]:
    row = {"view_name": name, "populated": True, "last_refresh_at": NOW - timedelta(seconds=400), "rows": 7,
           "watermark": 5, "silver_version": 5, "last_status": "skipped", "last_reason": "silver unchanged",
           "now": NOW}
    return {**row, **changes}


def test_gold_current_with_silver_is_fresh_however_old_the_refresh() -> None:
    result = judge_gold([_view("gold.a"), _view("gold.b")], EXPECTED.gold_views, sla_s=300)
    assert result.status == "ok", result.detail
    assert "2 views populated, 14 rows; 2 current" in result.detail


def test_gold_behind_silver_within_the_sla_passes_past_it_fails() -> None:
    recent = _view("gold.b", watermark=4, last_refresh_at=NOW - timedelta(seconds=30))
    assert judge_gold([_view("gold.a"), recent], EXPECTED.gold_views, sla_s=300).status == "ok"
    stale = _view("gold.b", watermark=4)
    result = judge_gold([_view("gold.a"), stale], EXPECTED.gold_views, sla_s=300)
    assert result.status == "fail"
    assert "behind silver for longer than SCOUT_GOLD_MAX_STALENESS_S=300 s: b" in result.detail


@pytest.mark.parametrize(("changes", "cause"), [
    ({"populated": False}, "not populated (run `scout jobs run gold-refresh`)"),
    ({"last_refresh_at": None}, "never refreshed by the gold-refresh job"),
    ({"last_status": "failed", "last_reason": "lock timeout"}, "last refresh failed (lock timeout)"),
])
def test_gold_problems_name_cause_and_view(changes: dict[str, Any], cause: str) -> None:
    result = judge_gold([_view("gold.a"), _view("gold.b", **changes)], EXPECTED.gold_views, sla_s=300)
    assert result.status == "fail"
    assert f"{cause}: b;" in result.detail


def test_a_missing_gold_view_says_to_migrate() -> None:
    result = judge_gold([_view("gold.a")], EXPECTED.gold_views, sla_s=300)
    assert result.status == "fail" and "scout migrate" in result.detail


# --- scheduler -------------------------------------------------------------------------------------


def _run(job: str, age_s: float, status: str = "succeeded", running: bool = False) -> dict[str, Any]:
    at = NOW - timedelta(seconds=age_s)
    return {"job_name": job, "started_at": at - timedelta(seconds=1), "finished_at": None if running else at,
            "status": "running" if running else status, "error": "boom" if status == "failed" else None}


def test_jobs_run_within_a_few_intervals_pass() -> None:
    rows = [_run("gold-refresh", 12), _run("retention", 3000)]
    result = judge_jobs(rows, NOW, EXPECTED)
    assert result.status == "ok", result.detail


def test_a_job_late_by_several_intervals_means_the_scheduler_is_down() -> None:
    limit = allowed_age_s(10.0, EXPECTED)
    assert limit == 3 * 10.0 + EXPECTED.job_grace_s
    rows = [_run("gold-refresh", limit + 1), _run("retention", 3000)]
    result = judge_jobs(rows, NOW, EXPECTED)
    assert result.status == "fail"
    assert result.detail.startswith("scheduler down or stuck: gold-refresh last ran")
    assert "start `scout scheduler`" in result.detail


def test_a_run_still_in_progress_counts_from_its_start() -> None:
    assert judge_jobs([_run("gold-refresh", 20, running=True), _run("retention", 10)], NOW, EXPECTED).status == "ok"
    stuck = judge_jobs([_run("gold-refresh", 300, running=True), _run("retention", 10)], NOW, EXPECTED)
    assert stuck.status == "fail"


def test_a_job_that_never_ran_was_never_registered() -> None:
    result = judge_jobs([_run("gold-refresh", 1)], NOW, EXPECTED)
    assert result.status == "fail" and "never ran: retention" in result.detail


def test_a_failed_last_run_fails_with_its_error() -> None:
    result = judge_jobs([_run("gold-refresh", 1, status="failed"), _run("retention", 1)], NOW, EXPECTED)
    assert result.status == "fail" and "gold-refresh failed: boom" in result.detail


# --- alerts ----------------------------------------------------------------------------------------


def _alert(severity: str, rule: str = "over_threshold") -> dict[str, Any]:
    return {"rule": rule, "subject": "STORE-1", "severity": severity, "message": "3 rows over 10000",
            "first_seen": NOW - timedelta(minutes=5), "last_seen": NOW, "count": 4, "now": NOW}


def test_alerts() -> None:
    assert judge_alerts([]).status == "ok"
    assert judge_alerts([_alert("warning")]).status == "warn"
    critical = judge_alerts([_alert("critical"), _alert("warning")])
    assert critical.status == "fail"
    assert "critical over_threshold [STORE-1] open for 5.0 min: 3 rows over 10000" in critical.detail


# --- report ----------------------------------------------------------------------------------------


def test_exit_code_and_json() -> None:
    passing = [Result("database", "ok", "up"), Result("alerts", "warn", "1 warning"), Result("x", "skip", "-")]
    assert report.exit_code(passing) == 0
    failing = [*passing, Result("scheduler jobs", "fail", "scheduler down")]
    assert report.exit_code(failing) == 1
    body = json.loads(report.as_json(failing))
    assert body["ok"] is False
    assert body["checks"][-1] == {"check": "scheduler jobs", "status": "fail", "detail": "scheduler down"}


def test_render_prints_every_check_and_names_the_failures() -> None:
    console = Console(record=True, width=200)
    code = report.render([Result("database", "ok", "PostgreSQL 16"), Result("scheduler jobs", "fail", "down")],
                         console)
    text = console.export_text()
    assert code == 1
    assert "PostgreSQL 16" in text and "FAILED: scheduler jobs" in text
