"""Bronze by day on a real PostgreSQL: partitions created ahead by the job, a landing across midnight, an event
unique across days, retention that drops whole days but keeps a day an open quarantine needs, and the verify check
of the default partition."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from cli.verify.stages import bronze_partitions
from jobs.registry import run_job
from scout.settings import Settings
from streams.bronze.decode import BronzeRow
from streams.bronze.sink import land
from streams.silver.quarantine import replay
from tests.factories import bronze_row, tx_dict
from tests.integration.test_silver_step import _drain_all


def _today() -> date:
    return datetime.now(UTC).date()


def _at(day: date, clock: time = time(12)) -> datetime:
    return datetime.combine(day, clock, tzinfo=UTC)


def _received(row: BronzeRow, when: datetime) -> BronzeRow:
    return dataclasses.replace(row, received_at=when, received_text=when.isoformat())


async def _land_async(dsn: str, rows: list[BronzeRow]) -> Any:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await land(conn, rows, [])


def _land(dsn: str, rows: list[BronzeRow]) -> Any:
    return asyncio.run(_land_async(dsn, rows))


def _rows(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _partitions(dsn: str) -> set[str]:
    return {r[0] for r in _rows(dsn, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                     "WHERE i.inhparent = 'bronze.transactions'::regclass")}


def _name(day: date) -> str:
    return f"transactions_{day:%Y%m%d}"


def _create_day(dsn: str, day: date) -> None:
    """A past day's partition, as it would exist had the job run then (the job only creates today onwards)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE bronze.{_name(day)} PARTITION OF bronze.transactions "
                     f"FOR VALUES FROM ('{_at(day, time())}') TO ('{_at(day + timedelta(days=1), time())}')")


def _job(dsn: str, name: str, **settings: Any) -> dict[str, Any]:
    config = Settings(database_url=dsn, **settings)  # type: ignore[arg-type]
    with ConnectionPool(dsn, min_size=1, max_size=2, open=True,
                        kwargs={"options": "-c role=scout_pipeline"}) as pool:  # the scheduler's role
        return run_job(name, pool, config)


def _verify(dsn: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return bronze_partitions(conn)


def test_the_job_creates_partitions_ahead_once_and_verify_sees_them(database: str) -> None:
    assert _verify(database).status == "warn"  # nothing created yet: tomorrow's rows would go to the default
    first = _job(database, "bronze-partitions", bronze_partition_days_ahead=7)
    days = [_today() + timedelta(days=n) for n in range(8)]
    assert first["created"] == [d.isoformat() for d in days]
    assert first["default_rows"] == 0
    assert {_name(d) for d in days} | {"transactions_default"} == _partitions(database)
    assert _job(database, "bronze-partitions", bronze_partition_days_ahead=7)["created"] == []  # idempotent
    check = _verify(database)
    assert check.status == "ok", check.detail
    recorded = _rows(database, "SELECT status, details FROM ops.job_runs WHERE job_name = 'bronze-partitions' "
                               "ORDER BY id")
    assert [status for status, _ in recorded] == ["succeeded", "succeeded"]
    assert recorded[0][1]["created"] == first["created"]


def test_rows_of_a_day_without_partition_go_to_the_default_and_are_reported(database: str) -> None:
    _job(database, "bronze-partitions", bronze_partition_days_ahead=2)
    later = _today() + timedelta(days=3)  # beyond the days created
    _land(database, [_received(bronze_row(tx_dict(1)), _at(later))])
    assert _rows(database, "SELECT tableoid::regclass::text FROM bronze.transactions") == [
        ("bronze.transactions_default",)]
    check = _verify(database)
    assert check.status == "fail" and "1 bronze row(s) in bronze.transactions_default" in check.detail
    blocked = _job(database, "bronze-partitions", bronze_partition_days_ahead=4)  # the row's day is now due
    assert blocked["blocked"] == [later.isoformat()]  # never forced: its row would have to move
    assert blocked["created"] == [(later + timedelta(days=1)).isoformat()]
    assert blocked["default_rows"] == 1


def test_a_landing_across_midnight_splits_into_both_days(database: str) -> None:
    _job(database, "bronze-partitions", bronze_partition_days_ahead=1)
    midnight = _at(_today() + timedelta(days=1), time())
    rows = [_received(bronze_row(tx_dict(1), offset=0), midnight - timedelta(microseconds=1)),
            _received(bronze_row(tx_dict(2), offset=1), midnight)]
    result = _land(database, rows)  # one COPY, one transaction
    assert (result.inserted, result.duplicates) == (2, 0)
    landed = _rows(database, "SELECT transaction_id, tableoid::regclass::text, "
                             "EXISTS (SELECT 1 FROM bronze.pending p WHERE p.bronze_id = b.id) "
                             "FROM bronze.transactions b ORDER BY id")
    assert landed == [("TXN-000001", f"bronze.{_name(_today())}", True),
                      ("TXN-000002", f"bronze.{_name(_today() + timedelta(days=1))}", True)]


def test_an_event_lands_once_across_days(database: str) -> None:
    _job(database, "bronze-partitions", bronze_partition_days_ahead=1)
    event = bronze_row(tx_dict(7), offset=0)
    today, tomorrow = _at(_today()), _at(_today() + timedelta(days=1))
    assert _land(database, [_received(event, today)]).inserted == 1
    # Sent again, received a day later, another offset: another partition, the same event.
    resent = dataclasses.replace(_received(event, tomorrow), position=dataclasses.replace(event.position, offset=5))
    again = _land(database, [resent, _received(bronze_row(tx_dict(8), offset=6), tomorrow)])  # COPY refused: stage
    assert (again.inserted, again.duplicates) == (1, 1)
    both = _land(database, [dataclasses.replace(resent, position=dataclasses.replace(event.position, offset=9))])
    assert (both.inserted, both.duplicates) == (0, 1)
    assert _rows(database, "SELECT transaction_id, tableoid::regclass::text FROM bronze.transactions "
                           "ORDER BY id") == [("TXN-000007", f"bronze.{_name(_today())}"),
                                              ("TXN-000008", f"bronze.{_name(_today() + timedelta(days=1))}")]
    assert _rows(database, "SELECT count(*) FROM bronze.event_hashes") == [(2,)]
    assert _rows(database, "SELECT count(*) FROM bronze.pending") == [(2,)]
    with psycopg.connect(database) as conn, pytest.raises(psycopg.errors.UniqueViolation, match="event_hashes"):
        conn.execute("INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, "
                     "received_at, kafka_topic, kafka_partition, kafka_offset) SELECT event_hash, source, store_id, "
                     "transaction_id, payload, received_at + interval '1 day', kafka_topic, kafka_partition, 99 "
                     "FROM bronze.transactions WHERE transaction_id = 'TXN-000007'")


def test_retention_drops_an_old_day_and_keeps_a_day_an_open_quarantine_needs(database: str) -> None:
    old, quarantined, recent = (_today() - timedelta(days=n) for n in (41, 40, 20))
    for day in (old, quarantined, recent):
        _create_day(database, day)
    bad = tx_dict(4, total="99.00")  # the line sum does not match: quarantined by silver
    _land(database, [_received(bronze_row(tx_dict(1), offset=0), _at(old)),
                     _received(bronze_row(tx_dict(2), offset=1), _at(old, time(23, 59))),
                     _received(bronze_row(tx_dict(3), offset=2), _at(quarantined)),
                     _received(bronze_row(bad, offset=3), _at(quarantined)),
                     _received(bronze_row(tx_dict(5), offset=4), _at(recent))])
    asyncio.run(_drain_all(database, 100))
    assert _rows(database, "SELECT count(*) FROM silver.quarantine WHERE replayed_at IS NULL") == [(1,)]

    details = _job(database, "retention", bronze_retention_days=30)

    assert details["bronze_days"] == {old.isoformat(): "dropped", quarantined.isoformat(): "kept: open quarantine"}
    assert _name(old) not in _partitions(database) and _name(quarantined) in _partitions(database)
    assert _rows(database, "SELECT transaction_id FROM bronze.transactions ORDER BY id") == [
        ("TXN-000003",), ("TXN-000004",), ("TXN-000005",)]
    assert _rows(database, "SELECT count(*) FROM bronze.event_hashes") == [(3,)]  # the dropped day's went too
    assert _rows(database, "SELECT count(*) FROM silver.transactions") == [(4,)]  # silver keeps its rows
    recorded = _rows(database, "SELECT details FROM ops.job_runs WHERE job_name = 'retention'")
    assert recorded[0][0]["bronze_days"] == details["bronze_days"]
    ((open_id,),) = _rows(database, "SELECT id FROM silver.quarantine WHERE replayed_at IS NULL")
    with psycopg.connect(database) as conn:  # the kept day still serves the replay of its quarantined row
        assert len(replay(conn, ids=[open_id])) == 1
    # Once nothing needs it any more, the day goes too.
    asyncio.run(_drain_all(database, 100))
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE silver.quarantine SET replayed_at = now() WHERE replayed_at IS NULL")
    assert _job(database, "retention", bronze_retention_days=30)["bronze_days"] == {
        quarantined.isoformat(): "dropped"}
    assert _rows(database, "SELECT transaction_id FROM bronze.transactions") == [("TXN-000005",)]


def test_retention_keeps_a_day_with_rows_still_queued_for_silver(database: str) -> None:
    old = _today() - timedelta(days=35)
    _create_day(database, old)
    _land(database, [_received(bronze_row(tx_dict(1)), _at(old))])  # landed late, not processed yet
    details = _job(database, "retention", bronze_retention_days=30)
    assert details["bronze_days"] == {old.isoformat(): "kept: queued for silver"}
    assert _rows(database, "SELECT count(*) FROM bronze.transactions") == [(1,)]


_OLD_ROWS = """
INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at,
                                 kafka_topic, kafka_partition, kafka_offset)
SELECT md5(g::text) || md5(g::text), 'api', 'STORE-1', 'TXN-' || g, jsonb_build_object('n', g),
       now() - make_interval(days => g %% 50), 't', 0, g
FROM generate_series(1, %(n)s) AS g
"""


def test_migration_0027_keeps_the_rows_ids_queue_and_sequence_of_an_existing_bronze(
        postgres: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import scout.migrate
    from sql import load_migrations

    dsn = postgres.fresh_database(migrated=False)
    every = load_migrations()
    monkeypatch.setattr(scout.migrate, "load_migrations", lambda: [m for m in every if m.version < 27])
    scout.migrate.migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_OLD_ROWS, {"n": 500})
        conn.execute("DELETE FROM bronze.transactions WHERE id % 7 = 0")  # ids with gaps, as retention leaves
        conn.execute("DELETE FROM bronze.pending WHERE bronze_id <= 300 OR bronze_id % 7 = 0")  # processed
        before = conn.execute("SELECT id, event_hash, received_at, payload FROM bronze.transactions "
                              "ORDER BY id").fetchall()
        queued = conn.execute("SELECT bronze_id FROM bronze.pending ORDER BY 1").fetchall()
        (last_id,) = conn.execute("SELECT last_value FROM bronze.transactions_id_seq").fetchone()  # type: ignore[misc]
    monkeypatch.setattr(scout.migrate, "load_migrations", lambda: every)

    assert scout.migrate.migrate(dsn) == [m.version for m in every if m.version >= 27]

    assert _rows(dsn, "SELECT id, event_hash, received_at, payload FROM bronze.transactions ORDER BY id") == before
    assert _rows(dsn, "SELECT DISTINCT tableoid::regclass::text FROM bronze.transactions") == [
        ("bronze.transactions_legacy",)]
    assert _rows(dsn, "SELECT bronze_id FROM bronze.pending ORDER BY 1") == queued
    assert _rows(dsn, "SELECT count(*) FROM bronze.pending p JOIN bronze.transactions b "
                      "ON b.id = p.bronze_id AND b.received_at = p.received_at") == [(len(queued),)]
    assert _rows(dsn, "SELECT count(*) FROM bronze.event_hashes") == [(len(before),)]
    _land(dsn, [bronze_row(tx_dict(1))])  # lands today: still the legacy partition's range
    assert _rows(dsn, "SELECT id FROM bronze.transactions WHERE transaction_id = 'TXN-000001'") == [(last_id + 1,)]
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation, match="event_hashes"):
        conn.execute(_OLD_ROWS.replace("g %% 50", "60"), {"n": 1})  # an old row's event again, another day
    created = _job(dsn, "bronze-partitions", bronze_partition_days_ahead=2)["created"]
    assert created == [(_today() + timedelta(days=n)).isoformat() for n in (1, 2)]  # today is the legacy one's
    # Retention deletes the legacy partition's old processed rows one by one (their hashes too).
    details = _job(dsn, "retention", bronze_retention_days=30)
    gone = [r for r in before if r[2] < datetime.combine(_today() - timedelta(days=30), time(), tzinfo=UTC)
            and r[0] <= 300]
    assert details["deleted"]["bronze"] == len(gone) > 0
    assert _rows(dsn, "SELECT count(*) FROM bronze.event_hashes") == [(len(before) + 1 - len(gone),)]
    assert details["bronze_legacy"] == "kept: it holds rows"
    with psycopg.connect(dsn, autocommit=True) as conn:  # as if its last rows had aged out
        conn.execute("DELETE FROM bronze.pending")
        conn.execute("UPDATE bronze.transactions SET received_at = received_at - interval '60 days'")
    assert _job(dsn, "retention", bronze_retention_days=30)["bronze_legacy"] == "dropped"
    assert "transactions_legacy" not in _partitions(dsn)
    assert _rows(dsn, "SELECT count(*) FROM bronze.transactions") == [(0,)]


def _runbook_fix() -> str:
    """The SQL of the runbook's bronze-default-partition fix, as an operator pastes it."""
    from pathlib import Path
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md").read_text(encoding="utf-8")
    section = runbook.split("## bronze-default-partition", 1)[1].split("\n## ", 1)[0]
    return section.split("**Fix**", 1)[1].split("```sql", 1)[1].split("```", 1)[0]


def test_the_runbook_moves_rows_out_of_the_default_partition_into_their_day(database: str) -> None:
    later = _today() + timedelta(days=3)
    _land(database, [_received(bronze_row(tx_dict(1), offset=0), _at(later)),
                     _received(bronze_row(tx_dict(2), offset=1), _at(_today()))])  # no partition yet: default
    before = _rows(database, "SELECT id, event_hash, payload FROM bronze.transactions ORDER BY id")
    assert _verify(database).status == "fail"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(_runbook_fix().encode())
    assert _rows(database, "SELECT id, event_hash, payload FROM bronze.transactions ORDER BY id") == before
    assert _rows(database, "SELECT tableoid::regclass::text FROM bronze.transactions ORDER BY id") == [
        (f"bronze.{_name(later)}",), (f"bronze.{_name(_today())}",)]
    assert _rows(database, "SELECT count(*) FROM bronze.pending") == [(2,)]  # queued once, as before
    assert _rows(database, "SELECT count(*) FROM bronze.event_hashes") == [(2,)]
    check = _verify(database)
    assert check.status == "ok", check.detail
    assert _job(database, "bronze-partitions")["default_rows"] == 0  # the scheduler's role still reads it


@pytest.mark.parametrize("landed_before", [False, True], ids=["copy-path", "stage-path"])
def test_an_event_landed_by_two_sessions_at_once_lands_once(database: str, landed_before: bool) -> None:
    """The hashes' primary key settles a race that no pre-check sees: the second landing waits for the first,
    then finds the event landed (COPY refused, or the stage's INSERT refused and the rows retried one by one)."""
    import threading

    from tests.conftest import eventually

    _job(database, "bronze-partitions", bronze_partition_days_ahead=1)
    earlier = bronze_row(tx_dict(1), offset=0)
    if landed_before:  # a batch with an event already landed takes the stage path
        _land(database, [earlier])
    racing = bronze_row(tx_dict(2), offset=1)
    resent = _received(dataclasses.replace(racing, position=dataclasses.replace(racing.position, offset=2)),
                       racing.received_at + timedelta(days=1))  # read again, received the next day
    outcome: list[Any] = []
    with psycopg.connect(database) as first:  # one landing holds the event, not committed yet
        first.execute("INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, "
                      "received_at, kafka_topic, kafka_partition, kafka_offset) "
                      "VALUES (%s, %s, %s, %s, %s, %s, 't', 0, 1)",
                      [racing.event_hash, racing.source, racing.store_id, racing.transaction_id,
                       racing.payload_json, racing.received_at])
        second = threading.Thread(target=lambda: outcome.append(
            _land(database, [earlier, resent] if landed_before else [resent])))
        second.start()
        eventually(lambda: _rows(database, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND wait_event_type = 'Lock'"),
                   until=lambda r: r == [(1,)], timeout=60, what="the second landing to wait for the first")
        first.commit()
        second.join(timeout=60)
    assert not second.is_alive() and len(outcome) == 1
    assert (outcome[0].inserted, outcome[0].duplicates, outcome[0].dead_letters) == (0, 2 if landed_before else 1, [])
    assert _rows(database, "SELECT transaction_id, kafka_offset FROM bronze.transactions ORDER BY id") == (
        [("TXN-000001", 0)] if landed_before else []) + [("TXN-000002", 1)]
    assert _rows(database, "SELECT count(*) FROM bronze.pending") == [(2 if landed_before else 1,)]


def test_a_partition_is_not_created_while_a_landing_holds_bronze_and_is_on_the_next_run(database: str) -> None:
    with psycopg.connect(database) as landing:
        landing.execute("LOCK TABLE bronze.transactions IN ROW EXCLUSIVE MODE")  # what a landing holds
        with psycopg.connect(database, autocommit=True, options="-c role=scout_pipeline") as job:
            made = job.execute("SELECT day, status FROM bronze.create_day_partitions(0)").fetchall()
        assert made == [(_today(), "busy")]  # after lock_timeout, without failing the job
        landing.rollback()
    assert _job(database, "bronze-partitions", bronze_partition_days_ahead=1)["created"] == [
        _today().isoformat(), (_today() + timedelta(days=1)).isoformat()]
