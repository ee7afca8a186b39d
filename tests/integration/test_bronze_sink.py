"""Bronze landing: idempotent on the event hash, dead letters kept with the raw bytes."""

from __future__ import annotations

import asyncio

import psycopg

from streams.bronze.decode import DeadLetter, Position
from streams.bronze.sink import land
from tests.factories import bronze_row, tx_dict


async def _land(dsn: str, rows, dead):  # type: ignore[no-untyped-def]
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await land(conn, rows, dead)


def test_landing_twice_inserts_once(database: str) -> None:
    rows = [bronze_row(tx_dict(n), offset=n) for n in range(50)]
    first = asyncio.run(_land(database, rows, []))
    again = asyncio.run(_land(database, rows + rows[:5], []))
    assert (first.inserted, first.duplicates) == (50, 0)
    assert (again.inserted, again.duplicates) == (0, 55)
    with psycopg.connect(database) as conn:
        count, hashes = conn.execute(
            "SELECT count(*), count(DISTINCT event_hash) FROM bronze.transactions"
        ).fetchone()  # type: ignore[misc]
        payload = conn.execute("SELECT payload FROM bronze.transactions WHERE kafka_offset = 3").fetchone()
    assert count == hashes == 50
    assert payload and payload[0]["transaction_id"] == "TXN-000003"


def test_a_batch_overlapping_landed_events_inserts_only_the_new_ones(database: str) -> None:
    rows = [bronze_row(tx_dict(n), offset=n) for n in range(50)]
    asyncio.run(_land(database, rows[10:20], []))  # landed before, e.g. by a batch that was redelivered
    result = asyncio.run(_land(database, rows, []))  # all distinct: COPY is tried first and refused
    assert (result.inserted, result.duplicates) == (40, 10)
    with psycopg.connect(database) as conn:
        offsets = [r[0] for r in conn.execute("SELECT kafka_offset FROM bronze.transactions ORDER BY id")]
    assert sorted(offsets) == list(range(50))
    assert offsets[10:] == [n for n in range(50) if not 10 <= n < 20]  # the new ones in offset order


def test_dead_letters_are_kept_with_reason_and_raw_bytes(database: str) -> None:
    dead = [DeadLetter(b"k", b"\xff not json", "not JSON: bad", Position("t", 1, 9))]
    result = asyncio.run(_land(database, [bronze_row(tx_dict(1))], dead))
    assert (result.inserted, len(result.dead_letters)) == (1, 1)
    asyncio.run(_land(database, [], dead))  # a redelivery does not duplicate it
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT raw, reason, kafka_offset FROM ops.dead_letters").fetchall()
    assert rows == [(b"\xff not json", "not JSON: bad", 9)]


def test_every_row_landed_is_queued_for_silver_once(database: str) -> None:
    rows = [bronze_row(tx_dict(n), offset=n) for n in range(30)]
    asyncio.run(_land(database, rows[5:10], []))  # by COPY
    asyncio.run(_land(database, rows, []))  # through the stage: only the 25 new rows are inserted
    with psycopg.connect(database) as conn:
        conn.execute("DELETE FROM bronze.pending WHERE bronze_id = (SELECT min(id) FROM bronze.transactions)")
        asyncio.run(_land(database, rows[:1], []))  # a redelivery of a processed row does not queue it again
        queued = conn.execute("SELECT count(*), count(DISTINCT b.id) FROM bronze.pending p "
                              "JOIN bronze.transactions b ON b.id = p.bronze_id").fetchone()
    assert queued == (29, 29)
