"""The batching consumer's bookkeeping: acking one batch event makes its whole offset range committable."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from faust.types import TP

from streams.batching import BatchingConsumer, BatchMessage, RecordBatch, RecordBatchSchema, ScoutApp

TOPIC = "pos.transactions.v1.test"


def _records(first: int, last: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic=TOPIC, partition=0, offset=o, key=b"S", value=b"{}", timestamp=1_700_000_000_000,
                            timestamp_type=0, serialized_value_size=2) for o in range(first, last + 1)]


def _message(first: int, last: int) -> BatchMessage:
    return BatchMessage(TP(TOPIC, 0), RecordBatch(TOPIC, 0, first, last, _records(first, last)), generation_id=0)


@pytest.fixture
def consumer() -> Iterator[BatchingConsumer]:
    app = ScoutApp("scout-unit-batching", broker="kafka://127.0.0.1:9", store="memory://", batched_topics={TOPIC})
    app.topics._acking_topics.add(TOPIC)  # type: ignore[attr-defined]  # as when an agent subscribes
    consumer = app.consumer
    assert isinstance(consumer, BatchingConsumer)
    yield consumer


def test_acking_a_batch_makes_its_whole_range_committable(consumer: BatchingConsumer) -> None:
    tp = TP(TOPIC, 0)
    assert consumer.ack(_message(0, 4))
    assert consumer.ack(_message(5, 9))
    assert consumer._new_offset(tp) == 10  # the next offset to read: everything up to 9 is done


def test_nothing_is_committable_before_the_batch_is_acked(consumer: BatchingConsumer) -> None:
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 2  # offsets up to 1 committed earlier
    assert consumer.ack(_message(5, 9))  # a later batch done first ...
    assert consumer._new_offset(tp) is None  # ... commits nothing while 2..4 is open
    assert consumer.ack(_message(2, 4))
    assert consumer._new_offset(tp) == 10


def test_a_batch_is_acked_once_and_only_above_the_committed_offset(consumer: BatchingConsumer) -> None:
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 12
    message = _message(10, 14)
    assert consumer.ack(message)
    assert sorted(consumer._acked[tp]) == [12, 13, 14]
    assert not consumer.ack(message)
    assert consumer._n_acked == 3


def test_the_event_value_is_the_batch_itself() -> None:
    message = _message(3, 5)
    schema = RecordBatchSchema()
    batch = schema.loads_value(None, message)  # type: ignore[arg-type]
    assert isinstance(batch, RecordBatch)
    assert (batch.first, batch.last, len(batch)) == (3, 5, 3)
    assert schema.loads_key(None, message) is None  # type: ignore[arg-type]
    assert (message.offset, message.first_offset, message.value) == (5, 3, batch)
