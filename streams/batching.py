"""Deliver a fetched run of Kafka records to a Faust agent as ONE event (a ``RecordBatch``).

Faust's consumer hands every message to the agent on its own: per message it starts four tasks
(``Service.wait_first``), decodes, queues, tracks, acks and calls the sensors, which caps an agent near
8k messages/s on two cores whatever the agent does. For the topics named in ``ScoutApp(batched_topics=)``
this consumer delivers, per partition and per fetch, the records as one event instead, and acks the whole
offset range when the agent acks that event. The rest of Faust is unchanged: the agent, its stream, flow
control across rebalances, the stream buffer's backpressure (it now counts batches), and the committer,
which commits only offsets the agent acked — i.e. after the agent has persisted the batch.

Example::

    app = ScoutApp("scout", broker="kafka://localhost:9092", batched_topics={"pos.transactions.v1"})
    topic = app.topic("pos.transactions.v1", schema=RecordBatchSchema())

    @app.agent(topic)
    async def land(stream):
        async for event in stream.events():     # acked (offsets committable) when the next one is asked for
            for record in event.value.records:  # aiokafka ConsumerRecord: .key .value .offset .partition
                ...
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, AppT, ConsumerMessage, Message
from faust.types.transports import TransportT
from faust.types.tuples import ack_lock
from mode import Service
from mode.utils.futures import notify


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Consecutive records of one partition, in offset order (``first``..``last`` inclusive)."""

    topic: str
    partition: int
    first: int
    last: int
    records: Sequence[Any]  # aiokafka ConsumerRecord

    def __len__(self) -> int:
        return len(self.records)


class BatchMessage(ConsumerMessage):
    """A Faust message standing for the offsets ``first_offset``..``offset`` of one partition."""

    __slots__ = ("first_offset",)

    def __init__(self, tp: TP, batch: RecordBatch, generation_id: int) -> None:
        last = batch.records[-1]
        super().__init__(tp.topic, tp.partition, batch.last, (last.timestamp or 0) / 1000.0,
                         last.timestamp_type, None, None, batch,  # type: ignore[arg-type]
                         None, 0, sum(r.serialized_value_size for r in batch.records), tp,
                         generation_id=generation_id)
        self.first_offset = batch.first


class RecordBatchSchema(faust.Schema):
    """The event's value is the ``RecordBatch`` itself: no codec runs on it, the agent decodes."""

    def loads_key(self, app: AppT, message: Message, *, loads: Any = None, serializer: Any = None) -> Any:
        return None

    def loads_value(self, app: AppT, message: Message, *, loads: Any = None, serializer: Any = None) -> Any:
        return message.value


class BatchingConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer, delivering batched topics one ``BatchMessage`` per partition and fetch."""

    def ack(self, message: Message) -> bool:
        if not isinstance(message, BatchMessage):
            return bool(super().ack(message))
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            try:
                tp = message.tp
                committed = self._committed_offset[tp]
                start = message.first_offset if committed is None else max(message.first_offset, committed)
                acked_index = self._acked_index[tp]
                new = [offset for offset in range(start, message.offset + 1) if offset not in acked_index]
                self._unacked_messages.discard(message)
                if not new:
                    return False
                acked_index.update(new)
                self._acked[tp].extend(new)
                self._n_acked += len(new)
                return True
            finally:
                notify(self._waiting_for_ack)

    async def _drain_messages(self, fetcher: faust.types.ServiceT) -> None:  # pragma: no cover - needs a broker
        """Faust's fetch loop (same offsets, gaps, flow control and commit-every), one callback per batch."""
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        batched = cast(ScoutApp, self.app).batched_topics
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    await self.perform_seek()
                    continue
                generation_id = self.app.consumer_generation_id
                for tp, tp_records in records.items():
                    if self.app.consumer_generation_id != generation_id or not self.flow_active:
                        break
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic in batched:
                        await self._deliver_batch(tp, tp_records, generation_id)
                    else:
                        for record in tp_records:
                            await self._deliver(tp, self._to_message(tp, record))
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _fresh(self, tp: TP, records: Iterable[Any]) -> list[Any]:
        read = self._read_offset[tp]
        return [r for r in records if read is None or r.offset >= read]

    async def _before_delivery(self, tp: TP, topic: str, offset: int) -> None:
        read = self._read_offset[tp]
        if read and offset - read > 1 and self.app.topics.acks_enabled_for(topic):
            await self._add_gap(tp, read + 1, offset)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    async def _deliver(self, tp: TP, message: Message) -> None:
        read = self._read_offset[tp]
        if read is not None and message.offset < read:
            return
        await self._before_delivery(tp, message.topic, message.offset)
        await self.wait_first(self.callback(message), self.suspend_flow.wait())
        self._read_offset[tp] = message.offset

    async def _deliver_batch(self, tp: TP, records: Sequence[Any], generation_id: int) -> None:
        fresh = self._fresh(tp, records)
        if not fresh:
            return
        batch = RecordBatch(tp.topic, tp.partition, fresh[0].offset, fresh[-1].offset, fresh)
        await self._before_delivery(tp, tp.topic, batch.first)
        await self.wait_first(self.callback(BatchMessage(tp, batch, generation_id)), self.suspend_flow.wait())
        self._read_offset[tp] = batch.last


class BatchingTransport(aiokafka_driver.Transport):
    Consumer = BatchingConsumer


class ScoutApp(faust.App):
    """A Faust app whose consumer batches the records of ``batched_topics`` (see the module docstring)."""

    def __init__(self, id: str, *, batched_topics: Iterable[str] = (), **options: Any) -> None:
        self.batched_topics = frozenset(batched_topics)
        super().__init__(id, **options)

    def _new_transport(self) -> TransportT:
        return BatchingTransport(self.conf.broker_consumer, self)
