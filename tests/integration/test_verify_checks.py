"""`scout verify`'s database checks on a real PostgreSQL: a grant given by hand, an open critical alert, gold
never refreshed and pending migrations are each named; a migrated, refreshed database passes."""

from __future__ import annotations

import psycopg

from cli.verify import run_checks
from cli.verify.alerts import alerts
from cli.verify.command import expected
from cli.verify.database import roles
from cli.verify.kafka import partition_counts, replication
from cli.verify.stages import gold
from jobs.gold import GOLD_VIEWS, refresh_gold
from scout.db import open_pool
from scout.kafka import admin, ensure_topics
from scout.settings import Settings
from tests.conftest import eventually
from tests.services import Postgres


def test_grants_given_by_hand_are_named(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        assert roles(conn).status == "ok", roles(conn).detail
        conn.execute("GRANT INSERT ON silver.transactions TO scout_ingest")
        conn.execute("GRANT SELECT ON ops.job_runs TO scout_reader")
        conn.execute("GRANT CREATE ON SCHEMA gold TO scout_pipeline")
        result = roles(conn)
    assert result.status == "fail"
    assert "scout_ingest may write silver.transactions" in result.detail
    assert "scout_reader may reach ops.job_runs" in result.detail
    assert "scout_pipeline may create objects in schema gold" in result.detail


def test_an_open_critical_alert_fails_and_a_resolved_one_does_not(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO ops.alerts (rule, subject, severity, message) "
                     "VALUES ('gold_totals', 'gold.sales_by_store_day', 'critical', 'gold differs from silver')")
        result = alerts(conn)
        assert result.status == "fail"
        assert "critical gold_totals [gold.sales_by_store_day]" in result.detail
        conn.execute("UPDATE ops.alerts SET resolved_at = now()")
        assert alerts(conn).status == "ok"


def test_gold_is_checked_against_the_refresh_log(settings: Settings) -> None:
    views = tuple(v.name for v in GOLD_VIEWS)
    exp = expected(settings, max_lag=0, max_silver_delay_s=60)
    assert exp.gold_views == views
    with psycopg.connect(settings.database_dsn(), autocommit=True) as conn:
        never = gold(conn, exp, sla_s=300)
        assert never.status == "fail" and "never refreshed by the gold-refresh job" in never.detail
        with open_pool(settings, name="verify-test") as pool:
            refresh_gold(pool)
        fresh = gold(conn, exp, sla_s=300)
    assert fresh.status == "ok", fresh.detail
    assert f"{len(views)} views populated" in fresh.detail


def test_pending_migrations_fail_and_skip_what_needs_them(postgres: Postgres, kafka_bootstrap: str) -> None:
    settings = Settings(database_url=postgres.fresh_database(migrated=False),  # type: ignore[arg-type]
                        kafka_bootstrap=kafka_bootstrap)
    results = {r.check: r for r in run_checks(settings, expected(settings, max_lag=0, max_silver_delay_s=60))}
    assert results["database"].status == "ok"
    assert results["migrations"].status == "fail" and "run `scout migrate`" in results["migrations"].detail
    for name in ("roles and grants", "silver backlog", "gold views", "scheduler jobs", "alerts"):
        assert results[name].status == "skip", name


def test_one_broker_gets_one_copy_and_replication_passes(settings: Settings) -> None:
    client = admin(settings)
    try:
        assert replication(client, settings).status == "skip"  # no topics yet
        made = ensure_topics(settings)
        assert made.created == [settings.topic, settings.dead_letter_topic]
        assert (made.replication.factor, made.replication.min_insync, made.replication.brokers) == (1, 1, 1)
        assert "fewer than SCOUT_TOPIC_REPLICATION_FACTOR=3" in made.replication.note
        eventually(lambda: partition_counts(client, [settings.topic, settings.dead_letter_topic]),
                   until=lambda found: len(found) == 2, timeout=30, what="both topics described by the broker")
        result = replication(client, settings)
    finally:
        client.close()
    assert result.status == "ok", result.detail
    assert result.detail.startswith("1 copy in sync on every partition, min.insync.replicas 1; 1 broker(s)")
