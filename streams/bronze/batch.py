"""Turn a ``getmany`` result into what one landing transaction writes: rows, dead letters, the partitions'
moves and the rows already encoded for COPY. Pure: no I/O, so the consumer prepares the next batch while
PostgreSQL writes the one before.

Example::

    prepared = await prepare(batch, topic, owned={0: Owned(120, 3)}, ahead={})
    prepared.moves          # [Move(0, epoch=3, expected=120, next_offset=170)]
    prepared.copy_data      # b"<event_hash>\\tapi\\t..." one COPY text line per row
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from aiokafka import ConsumerRecord, TopicPartition

from streams.bronze.decode import BronzeRow, DeadLetter, Position, decode
from streams.bronze.offsets import Move, Owned


def _escape(text: str) -> str:
    """COPY text format: backslash, tab, newline and carriage return escaped (checked first: JSON text has none
    but backslashes, and most fields none at all)."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


@dataclass(frozen=True)
class Prepared:
    records: int
    rows: list[BronzeRow]
    dead: list[DeadLetter]
    moves: list[Move]
    copy_data: bytes


def copy_line(row: BronzeRow) -> bytes:
    """One row in COPY's text format, in the column order of the ``bronze_copy`` query. The payload is JSON
    text: it holds no raw tab, newline or carriage return, only backslashes to double."""
    p = row.position
    payload = row.payload.replace(b"\\", b"\\\\") if b"\\" in row.payload else row.payload
    head = f"{row.event_hash}\t{row.source}\t{_escape(row.store_id)}\t{_escape(row.transaction_id)}\t".encode()
    tail = f"\t{_escape(row.received_text)}\t{_escape(p.topic)}\t{p.partition}\t{p.offset}\n".encode()
    return head + payload + tail


def encode(rows: Sequence[BronzeRow]) -> bytes:
    return b"".join(map(copy_line, rows))


def split(records: Sequence[ConsumerRecord]) -> tuple[list[BronzeRow], list[DeadLetter]]:
    rows: list[BronzeRow] = []
    dead: list[DeadLetter] = []
    for record in records:
        result = decode(record.value, key=record.key,
                        position=Position(record.topic, record.partition, record.offset))
        if isinstance(result, BronzeRow):
            rows.append(result)
        else:
            dead.append(result)
    return rows, dead


async def prepare(batch: Mapping[TopicPartition, list[ConsumerRecord]], topic: str, owned: Mapping[int, Owned],
                  ahead: MutableMapping[int, int], *, chunk: int = 256) -> Prepared | None:
    """The batch's records on partitions held here, from where the previous prepared batch ends (``ahead``,
    else the landed offset); advances ``ahead``. None when nothing is left to land.

    It yields to the event loop every ``chunk`` records, so the landing in flight keeps PostgreSQL fed with
    COPY data while this one is decoded."""
    records: list[ConsumerRecord] = []
    moves: list[Move] = []
    for tp, got in batch.items():
        held = owned.get(tp.partition)
        if tp.topic != topic or held is None:
            continue  # revoked or fenced meanwhile: the next holder reads it from PostgreSQL
        start = ahead.get(tp.partition, held.next_offset)
        fresh = [r for r in got if r.offset >= start]
        if not fresh:
            continue
        records.extend(fresh)
        moves.append(Move(tp.partition, held.epoch, start, fresh[-1].offset + 1))
        ahead[tp.partition] = fresh[-1].offset + 1
    if not moves:
        return None
    rows: list[BronzeRow] = []
    dead: list[DeadLetter] = []
    data: list[bytes] = []
    for start in range(0, len(records), chunk):
        some, bad = split(records[start:start + chunk])
        rows += some
        dead += bad
        data.append(encode(some))
        await asyncio.sleep(0)
    return Prepared(len(records), rows, dead, moves, b"".join(data))
