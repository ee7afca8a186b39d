"""ops.stream_offsets on real PostgreSQL: a claim bumps the epoch; a landing moves the offset in the same
transaction as its rows, only while epoch and offset still match (else everything rolls back); one record the
database refuses, or a dead-letter reason it cannot store, never stops a partition."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from streams.bronze.decode import DeadLetter, Position
from streams.bronze.errors import Fenced
from streams.bronze.offsets import Move, Owned, claim
from streams.bronze.sink import LandResult, land
from tests.factories import bronze_row, tx_dict

TOPIC = "t"


async def _land(dsn: str, rows: list[Any], dead: list[DeadLetter], moves: list[Move]) -> LandResult:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await land(conn, rows, dead, TOPIC, moves)


async def _claim(dsn: str, first: dict[int, int], owner: str = "w1") -> dict[int, Owned]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await claim(conn, TOPIC, first, owner=owner)


def _state(dsn: str) -> dict[int, tuple[int, int, str | None]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT kafka_partition, next_offset, epoch, owner FROM ops.stream_offsets "
                            "WHERE kafka_topic = %s", (TOPIC,)).fetchall()
    return {int(p): (int(o), int(e), w) for p, o, e, w in rows}


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _rows(first: int, count: int) -> list[Any]:
    return [bronze_row(tx_dict(n), offset=n) for n in range(first, first + count)]


def test_a_claim_creates_missing_partitions_and_bumps_every_epoch(database: str) -> None:
    assert asyncio.run(_claim(database, {0: 5, 1: 0})) == {0: Owned(5, 1), 1: Owned(0, 1)}
    asyncio.run(_land(database, _rows(5, 10), [], [Move(0, 1, 5, 15)]))
    # a second claim (another worker after a rebalance) keeps the landed offset, whatever it is told
    assert asyncio.run(_claim(database, {0: 0, 2: 7}, owner="w2")) == {0: Owned(15, 2), 2: Owned(7, 1)}
    assert _state(database) == {0: (15, 2, "w2"), 1: (0, 1, "w1"), 2: (7, 1, "w2")}


def test_a_landing_moves_the_offsets_with_its_rows_and_dead_letters(database: str) -> None:
    asyncio.run(_claim(database, {0: 0, 1: 0}))
    dead = [DeadLetter(b"k", b"not json", "not JSON: bad", Position(TOPIC, 1, 0))]
    result = asyncio.run(_land(database, _rows(0, 6), dead, [Move(0, 1, 0, 6), Move(1, 1, 0, 1)]))
    assert (result.inserted, result.duplicates, len(result.dead_letters)) == (6, 0, 1)
    assert _state(database)[0][:2] == (6, 1) and _state(database)[1][:2] == (1, 1)


def test_a_landing_of_an_old_epoch_is_fenced_and_rolls_back_entirely(database: str) -> None:
    asyncio.run(_claim(database, {0: 0}))
    asyncio.run(_claim(database, {0: 0}, owner="w2"))  # the partition moved to w2 (epoch 2)
    with pytest.raises(Fenced, match=r"partitions \[0\]"):
        asyncio.run(_land(database, _rows(0, 10), [DeadLetter(None, b"x", "not JSON", Position(TOPIC, 0, 10))],
                          [Move(0, 1, 0, 11)]))
    assert _count(database, "bronze.transactions") == 0 and _count(database, "ops.dead_letters") == 0
    assert _state(database)[0] == (0, 2, "w2")


def test_a_landing_that_expects_another_offset_is_fenced(database: str) -> None:
    asyncio.run(_claim(database, {0: 0}))
    asyncio.run(_land(database, _rows(0, 10), [], [Move(0, 1, 0, 10)]))
    with pytest.raises(Fenced):  # the same epoch, but from a position PostgreSQL is no longer at
        asyncio.run(_land(database, _rows(5, 10), [], [Move(0, 1, 5, 15)]))
    assert _state(database)[0][:2] == (10, 1) and _count(database, "bronze.transactions") == 10


def test_two_workers_landing_one_partition_at_once_land_it_once(database: str) -> None:
    asyncio.run(_claim(database, {0: 0}))

    async def both() -> list[Any]:
        return await asyncio.gather(_land(database, _rows(0, 300), [], [Move(0, 1, 0, 300)]),
                                    _land(database, _rows(0, 300), [], [Move(0, 1, 0, 300)]),
                                    return_exceptions=True)

    outcomes = asyncio.run(both())
    assert sorted(type(o).__name__ for o in outcomes) == ["Fenced", "LandResult"]
    assert _count(database, "bronze.transactions") == 300 and _state(database)[0][:2] == (300, 1)


def test_a_row_the_database_refuses_becomes_a_dead_letter_in_the_same_landing(database: str) -> None:
    asyncio.run(_claim(database, {0: 0}))
    rows = _rows(0, 5)
    bad = rows[2].__class__(rows[2].event_hash, rows[2].source, "STORE\x00NUL", rows[2].transaction_id,
                            rows[2].payload, rows[2].received_at, rows[2].position, rows[2].received_text)
    result = asyncio.run(_land(database, [*rows[:2], bad, *rows[3:]], [], [Move(0, 1, 0, 5)]))
    assert (result.inserted, [d.position.offset for d in result.dead_letters]) == (4, [2])
    with psycopg.connect(database) as conn:
        reason = conn.execute("SELECT reason FROM ops.dead_letters WHERE kafka_offset = 2").fetchone()
    assert reason is not None and reason[0].startswith("refused by database: ")
    assert _state(database)[0][:2] == (5, 1)


@pytest.mark.parametrize("reason", ["schema: tx.a\x00b: Extra inputs are not permitted", "schema: \ud800: bad",
                                    "x" * 5000])
def test_a_dead_letter_whose_reason_cannot_be_stored_as_is_is_stored(database: str, reason: str) -> None:
    asyncio.run(_claim(database, {0: 0}))
    dead = [DeadLetter(b"\x00k", b"{\"a\x00\": 1}", reason, Position(TOPIC, 0, 0))]
    asyncio.run(_land(database, _rows(1, 3), dead, [Move(0, 1, 0, 4)]))
    with psycopg.connect(database) as conn:
        stored = conn.execute("SELECT raw, reason FROM ops.dead_letters").fetchall()
    assert stored[0][0] == b"{\"a\x00\": 1}" and 0 < len(stored[0][1]) <= 500 and "\x00" not in stored[0][1]
    assert _state(database)[0][:2] == (4, 1) and _count(database, "bronze.transactions") == 3


def test_rows_encoded_for_copy_land_exactly_as_decoded(database: str) -> None:
    from streams.bronze.batch import encode

    names = ["back\\slash \"quoted\"", "new\nline\r\tall", "ünïcode \u2013 dash"]
    rows = [bronze_row(tx_dict(n, items=[{"product_name": name, "qty": 1, "unit_price": "2.50"}], total="2.50"),
                       offset=n) for n, name in enumerate(names)]
    asyncio.run(_claim(database, {0: 0}))

    async def run() -> LandResult:
        async with await psycopg.AsyncConnection.connect(database) as conn:
            return await land(conn, rows, [], TOPIC, [Move(0, 1, 0, 3)], encode(rows))

    assert asyncio.run(run()).inserted == 3
    with psycopg.connect(database) as conn:
        stored = conn.execute("SELECT store_id, payload::text, received_at, kafka_offset FROM bronze.transactions "
                              "ORDER BY kafka_offset").fetchall()
    import orjson

    assert [(s, orjson.loads(p), r, o) for s, p, r, o in stored] == [
        (row.store_id, orjson.loads(row.payload_json), row.received_at, row.position.offset) for row in rows]
