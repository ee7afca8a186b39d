"""The bronze consumer: an ``AIOKafkaConsumer`` owned by the worker that lands whole ``getmany`` batches.

PostgreSQL is the only truth of what landed (``ops.stream_offsets``, see offsets.py). On assignment every
partition is paused, claimed (new epoch) and sought to its landed offset before anything is fetched. Each
batch lands in one transaction that moves the partitions' offsets only while their epochs still match; a
batch that did not commit is followed by a seek back to the landed offsets. A revoke waits for the batch in
flight, so partitions change hands between transactions. Offsets are committed to Kafka afterwards only as
a mirror for outside lag tools, and read back only for a partition PostgreSQL has never seen.

Example::

    bronze = BronzeConsumer(settings, resources)
    app.service(bronze)          # started and stopped with the Faust worker
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, OffsetOutOfRangeError
from aiokafka.structs import OffsetAndMetadata
from mode import Service

from observability.metrics import (
    BRONZE_FENCED,
    CONSUMER_STALLS,
    DEAD_LETTERS,
    STAGE_BATCH_SECONDS,
    STAGE_BATCH_SIZE,
    STAGE_ROWS,
)
from scout.errors import backoff_delays, classify
from scout.settings import Settings
from streams.bronze.batch import Prepared, prepare
from streams.bronze.errors import Fenced, TopicRecreated
from streams.bronze.liveness import Liveness
from streams.bronze.offsets import Move, Owned, advance, check_fence, claim, known, start_position
from streams.bronze.sink import LandResult, land
from streams.lag import export, measure
from streams.resources import StreamResources

log = logging.getLogger(__name__)
BROKER_TIMEOUT_S = 10.0
COMMIT_EVERY_S = 1.0
FETCH_SLICE = 500
MAX_IN_FLIGHT = 2  # landings at once behind full batches: one commits while the next one's COPY arrives


_NONE = Owned(-1, -1)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, bronze: BronzeConsumer) -> None:
        self.bronze = bronze

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.bronze.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.bronze.on_assigned(assigned)


class BronzeConsumer(Service):
    """Lands the transactions topic in bronze; one per worker process."""

    def __init__(self, settings: Settings, resources: StreamResources, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.resources = resources
        self.topic = settings.topic
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.owned: dict[int, Owned] = {}  # claimed and sought: the next offset to land, the epoch
        self.ahead: dict[int, int] = {}  # where the batch prepared last ends (ahead of what landed)
        self.pending: set[int] = set()  # assigned but not claimed yet (paused)
        self.fenced: dict[int, float] = {}  # lost to another worker, held paused until the next assignment
        self.landings: set[asyncio.Task[bool]] = set()  # in flight (at most MAX_IN_FLIGHT)
        self.claiming = asyncio.Lock()
        self.liveness = Liveness(settings.consumer_stall_timeout_s)
        self.consumer: AIOKafkaConsumer | None = None
        self.error: BaseException | None = None  # set when the worker must stop (TopicRecreated)
        self._mirror: dict[int, int] = {}  # offsets to commit to Kafka (a mirror for outside lag tools)
        self._last_mirror = 0.0
        self._ends: dict[int, int] = {}
        self._next_observe = 0.0
        self._last_judged = 0.0
        timeout = settings.consumer_stall_timeout_s
        self.observe_every_s = min(settings.consumer_lag_interval_s, timeout / 3 if timeout > 0 else float("inf"))

    # --- lifecycle --------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers, group_id=s.stream_app_id, client_id=f"scout-bronze-{self.owner}",
            enable_auto_commit=False, auto_offset_reset="none",
            session_timeout_ms=int(s.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.broker_heartbeat_interval_s * 1000),
            fetch_max_wait_ms=int(min(s.bronze_batch_within_s, 0.5) * 1000),
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        await self.consumer.start()

    async def on_stop(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is None:
            return
        if not await self._quiesce():
            log.warning("bronze: stopping with a batch in flight (it commits or rolls back in PostgreSQL)")
        await self._commit_mirror(force=True, consumer=consumer)
        await consumer.stop()  # leaves the group: its partitions move on at once

    @Service.task
    async def _run(self) -> None:
        """Fetch and prepare the next batch while earlier ones land, each prepared from where the one before ends
        (if one does not commit, those behind it fail their fence check, the prepared batch is dropped, and the
        partitions are claimed again from PostgreSQL)."""
        delays = backoff_delays(cap=self.settings.retry_max_backoff_s)
        inflight: deque[asyncio.Task[bool]] = deque()
        try:
            while not self.should_stop and self.consumer is not None:
                consumer = self.consumer
                try:
                    if self.pending:
                        await self._settle(inflight)
                        async with self.claiming:
                            await self._claim(consumer, self.pending.copy())
                    batch = await self._fetch(consumer)
                    prepared = await prepare(batch, self.topic, self.owned, self.ahead) if batch else None
                    # a second landing goes in flight only behind a full batch (a backlog): its COPY arrives while
                    # the first one commits; otherwise the one in flight lands first
                    full = prepared is not None and prepared.records >= self.settings.bronze_batch_size
                    room = MAX_IN_FLIGHT if full else 1
                    failed = False
                    while inflight and (inflight[0].done() or len(inflight) >= room):
                        failed |= not await inflight.popleft()
                    if failed and prepared is not None:  # prepared past a batch that did not commit:
                        self._reclaim([m.partition for m in prepared.moves])  # read it again from there
                        prepared = None
                    if prepared is not None:
                        inflight.append(self._submit(consumer, prepared))
                    await self._housekeeping(consumer)
                    delays = backoff_delays(cap=self.settings.retry_max_backoff_s)
                except ConsumerStoppedError:
                    return
                except TopicRecreated as exc:
                    await self._fail(exc)
                    return
                except OffsetOutOfRangeError as exc:  # retention deleted records between the seek and the fetch
                    log.warning("bronze: offsets out of range (%s); reading the landed offsets again", exc)
                    await self._settle(inflight)
                    self._reclaim([tp.partition for tp in exc.args[0]] if exc.args else list(self.owned))
                except Exception as exc:
                    delay = next(delays)
                    level = logging.WARNING if classify(exc) == "transient" else logging.ERROR
                    log.log(level, "bronze: %r; seeking back to the landed offsets in %.1f s", exc, delay,
                            exc_info=level == logging.ERROR)
                    await self._settle(inflight)
                    await asyncio.sleep(delay)
                    self._reclaim(list(self.owned))
        finally:
            await self._settle(inflight)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Up to SCOUT_BRONZE_BATCH_SIZE records, taken in slices (aiokafka parses what it returns at once:
        slices let the landing in flight feed PostgreSQL in between)."""
        size = self.settings.bronze_batch_size
        step = min(size, FETCH_SLICE)
        batch = await consumer.getmany(timeout_ms=int(self.settings.bronze_batch_within_s * 1000), max_records=step)
        taken = sum(map(len, batch.values()))
        while batch and taken < size:
            more = await consumer.getmany(timeout_ms=0, max_records=min(step, size - taken))
            if not more:
                break
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
            taken += sum(map(len, more.values()))
        return batch

    async def _settle(self, inflight: deque[asyncio.Task[bool]]) -> None:
        """Wait for the landings in flight (each commits or rolls back in PostgreSQL)."""
        while inflight:
            with contextlib.suppress(Exception):
                await asyncio.shield(inflight.popleft())

    async def _fail(self, exc: BaseException) -> None:
        """A condition a human must look at: say so and stop the worker (exit status 1)."""
        log.critical("bronze: %s", exc)
        self.error = exc
        await self.crash(exc)

    # --- assignment -------------------------------------------------------------------------------------
    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        mine = [tp.partition for tp in revoked if tp.topic == self.topic]
        if not await self._quiesce():  # the batches in flight commit (or roll back) before the partitions move
            log.warning("bronze: partitions %s revoked with a batch still waiting for PostgreSQL; the next owner's "
                        "epoch fences it", mine)
        if self.consumer is not None:
            await self._commit_mirror(force=True, consumer=self.consumer)
        for partition in mine:
            self.ahead.pop(partition, None)
            self.owned.pop(partition, None)
            self.fenced.pop(partition, None)
            self.pending.discard(partition)
            self.liveness.forget(partition)
        self._mirror = {p: o for p, o in self._mirror.items() if p not in mine}

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == self.topic}
        if not mine or self.consumer is None:
            return
        self.consumer.pause(*(TopicPartition(self.topic, p) for p in mine))  # nothing is fetched before the seek
        self.pending |= mine
        if not await self._quiesce():
            return  # a batch still waits for PostgreSQL: the loop claims them afterwards
        try:
            async with self.claiming:
                await self._claim(self.consumer, set(mine))
        except TopicRecreated as exc:
            await self._fail(exc)
        except Exception as exc:  # the database or broker away: the loop claims them when it can
            log.warning("bronze: partitions %s not claimed yet (%r); retrying", sorted(mine), exc)

    async def _quiesce(self) -> bool:
        """Wait (up to SCOUT_BRONZE_REVOKE_WAIT_S) for the landings in flight; False if one still runs."""
        if self.landings:
            await asyncio.wait(set(self.landings), timeout=self.settings.bronze_revoke_wait_s)
        return not self.landings

    async def _claim(self, consumer: AIOKafkaConsumer, partitions: set[int]) -> None:
        """Claim ``partitions`` in PostgreSQL (new epoch), clamp to the broker's range, seek, resume."""
        if not partitions:
            return
        tps = {p: TopicPartition(self.topic, p) for p in partitions}
        earliest = await asyncio.wait_for(consumer.beginning_offsets(list(tps.values())), BROKER_TIMEOUT_S)
        end = await asyncio.wait_for(consumer.end_offsets(list(tps.values())), BROKER_TIMEOUT_S)
        pool = await self.resources.pool()
        async with pool.connection() as conn:
            seen = await known(conn, self.topic, partitions)
            first = {p: seen[p].next_offset if p in seen else await self._first_offset(consumer, tps[p], earliest)
                     for p in partitions}
            owned = await claim(conn, self.topic, first, owner=self.owner)
            starts = {p: start_position(o.next_offset, earliest=earliest[tps[p]], end=end[tps[p]], topic=self.topic,
                                        partition=p) for p, o in owned.items()}
            for p, start in starts.items():
                if start.expired is not None:
                    owned[p] = await self._skip_expired(conn, p, owned[p], start.offset, start.expired)
        assigned = consumer.assignment()
        for p, o in owned.items():
            if p in self.pending and tps[p] in assigned:  # still ours (no revoke meanwhile)
                consumer.seek(tps[p], o.next_offset)
                self.owned[p] = o
                self.ahead.pop(p, None)
                self.pending.discard(p)
                self.fenced.pop(p, None)
                consumer.resume(tps[p])
        log.info("bronze: claimed %s", {p: (o.next_offset, o.epoch) for p, o in sorted(owned.items())})

    async def _first_offset(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                            earliest: Mapping[TopicPartition, int]) -> int:
        """A partition PostgreSQL never saw: the group's committed offset (an upgrade), else the earliest."""
        committed = await asyncio.wait_for(consumer.committed(tp), BROKER_TIMEOUT_S)
        return int(committed) if committed is not None else int(earliest[tp])

    async def _skip_expired(self, conn: Any, partition: int, owned: Owned, earliest: int,
                            expired: tuple[int, int]) -> Owned:
        CONSUMER_STALLS.labels("expired").inc()
        log.critical("bronze: records %d..%d of %s[%d] were deleted from the broker before they landed "
                     "(retention); they are lost", expired[0], expired[1], self.topic, partition)
        async with conn.transaction():
            move = Move(partition, owned.epoch, owned.next_offset, earliest)
            await check_fence(conn, self.topic, [move])
            await advance(conn, self.topic, [move])
        return Owned(earliest, owned.epoch)

    def _reclaim(self, partitions: list[int]) -> None:
        """After a batch that did not commit: claim (and seek) again from PostgreSQL before the next fetch."""
        if self.consumer is None:
            return
        for p in partitions:
            self.ahead.pop(p, None)
            if p in self.owned:
                self.owned.pop(p)
                self.pending.add(p)
                self.consumer.pause(TopicPartition(self.topic, p))

    # --- landing ----------------------------------------------------------------------------------------
    def _submit(self, consumer: AIOKafkaConsumer, prepared: Prepared) -> asyncio.Task[bool]:
        task = asyncio.ensure_future(self._land(consumer, prepared))
        self.landings.add(task)
        task.add_done_callback(self.landings.discard)
        return task

    async def _land(self, consumer: AIOKafkaConsumer, prepared: Prepared) -> bool:
        """Land one prepared batch on a connection of its own. A second batch may be in flight behind it: its
        fence check waits for this one's partition rows, and fails if this one did not commit. True if committed."""
        started = time.perf_counter()
        moves = [m for m in prepared.moves if self.owned.get(m.partition, _NONE).epoch == m.epoch]
        if len(moves) != len(prepared.moves):  # revoked or claimed again since it was prepared
            self._reclaim([m.partition for m in moves])
            return False
        try:
            result = await self._persist(prepared, moves)
        except Fenced as exc:
            held = {m.partition: m.epoch for m in moves}
            lost = [p for p in exc.partitions if (exc.found.get(p) or (0, -1))[1] != held.get(p)]
            if lost:
                self._on_fenced(consumer, lost, moves)
            else:  # the same epoch at another offset: a batch before this one did not commit
                self._reclaim([m.partition for m in moves])
            return False
        except Exception as exc:
            log.error("bronze: batch not landed (%r); reading the landed offsets again", exc, exc_info=True)
            self._reclaim([m.partition for m in moves])
            return False
        for move in moves:
            current = self.owned.get(move.partition)
            if current is not None and current.epoch == move.epoch and current.next_offset < move.next_offset:
                self.owned[move.partition] = Owned(move.next_offset, move.epoch)
                self._mirror[move.partition] = move.next_offset
                self.liveness.landed(move.partition, move.next_offset)
        self._record(result, prepared.records, time.perf_counter() - started)
        return True

    async def _persist(self, prepared: Prepared, moves: list[Move]) -> LandResult:
        """Land with transient errors retried; a revoke or stop meanwhile ends the retries (fenced later)."""
        delays = backoff_delays(cap=self.settings.retry_max_backoff_s)
        while True:
            try:
                pool = await self.resources.pool()
                async with pool.connection() as conn:
                    return await land(conn, prepared.rows, prepared.dead, self.topic, moves, prepared.copy_data)
            except Fenced:
                raise
            except Exception as exc:
                if classify(exc) != "transient" or self.should_stop:
                    raise
                if any(m.partition not in self.owned for m in moves):
                    raise Fenced(topic=self.topic, partitions=[m.partition for m in moves
                                                               if m.partition not in self.owned], found={}) from exc
                delay = next(delays)
                log.warning("bronze: transient error, retrying in %.1f s: %r", delay, exc)
                await asyncio.sleep(delay)

    def _on_fenced(self, consumer: AIOKafkaConsumer, lost: list[int], moves: list[Move]) -> None:
        """Partitions another worker claimed: land nothing more for them until assigned again; the batch's
        other partitions seek back to where they are landed."""
        BRONZE_FENCED.inc()
        log.warning("bronze: fenced on partitions %s (another worker holds them now); batch rolled back", lost)
        for p in lost:
            self.ahead.pop(p, None)
            if self.owned.pop(p, None) is not None or p in self.pending:
                self.pending.discard(p)
                self.fenced[p] = time.monotonic()
                consumer.pause(TopicPartition(self.topic, p))
        self._reclaim([m.partition for m in moves if m.partition not in lost])

    def _record(self, result: LandResult, count: int, seconds: float) -> None:
        STAGE_BATCH_SIZE.labels("bronze").observe(count)
        STAGE_BATCH_SECONDS.labels("bronze").observe(seconds)
        STAGE_ROWS.labels("bronze", "inserted").inc(result.inserted)
        STAGE_ROWS.labels("bronze", "duplicate").inc(result.duplicates)
        for letter in result.dead_letters:
            DEAD_LETTERS.labels(letter.code).inc()
            log.warning("bronze: dead letter %s[%d]@%d: %s", letter.position.topic, letter.position.partition,
                        letter.position.offset, letter.reason)

    # --- housekeeping -----------------------------------------------------------------------------------
    async def _housekeeping(self, consumer: AIOKafkaConsumer) -> None:
        await self._commit_mirror(consumer=consumer)
        now = time.monotonic()
        hold = 3 * self.settings.broker_session_timeout_s
        for p, since in list(self.fenced.items()):  # still assigned here long after being fenced: claim again
            if now - since > hold:
                log.warning("bronze: partition %d still assigned here %.0f s after being fenced; claiming it again",
                            p, now - since)
                self.fenced.pop(p)
                self.pending.add(p)
        if now >= self._next_observe:
            self._next_observe = now + self.observe_every_s
            await self._observe(consumer, now)

    async def _commit_mirror(self, *, consumer: AIOKafkaConsumer, force: bool = False) -> None:
        if not self._mirror or (not force and time.monotonic() - self._last_mirror < COMMIT_EVERY_S):
            return
        offsets = {TopicPartition(self.topic, p): OffsetAndMetadata(o, "") for p, o in self._mirror.items()}
        self._mirror = {}
        self._last_mirror = time.monotonic()
        try:
            await consumer.commit(offsets)
        except Exception as exc:  # a mirror only: PostgreSQL holds the truth
            log.info("bronze: offsets not mirrored to Kafka (%r)", exc)

    async def _observe(self, consumer: AIOKafkaConsumer, now: float) -> None:
        """Read the broker's end offsets: export the lag, run the liveness alarm."""
        tps = [TopicPartition(self.topic, p) for p in self.owned]
        try:
            end = await asyncio.wait_for(consumer.end_offsets(tps), BROKER_TIMEOUT_S) if tps else {}
        except Exception as exc:
            log.info("bronze: end offsets not read (%r)", exc)
            return
        self._ends = {tp.partition: int(o) for tp, o in end.items()}
        self._judge(now)

    @Service.timer(1.0)
    async def _watch(self) -> None:
        """The alarm also runs while the loop waits on a landing stuck in PostgreSQL: the end offsets are the last
        ones read or the highwater of the last fetch, whichever is further."""
        consumer = self.consumer
        if consumer is None or time.monotonic() - self._last_judged < self.observe_every_s:
            return
        for p in list(self.owned):  # the highwater of the last fetch response: no request to the broker
            with contextlib.suppress(AssertionError):  # no longer assigned
                high = consumer.highwater(TopicPartition(self.topic, p))
                if high is not None and high > self._ends.get(p, -1):
                    self._ends[p] = high
        if self._ends:
            self._judge(time.monotonic())

    def _judge(self, now: float) -> None:
        """Run the liveness alarm over the landed offsets against the end offsets last read; export both."""
        self._last_judged = now
        stalled = self.liveness.observe(now, {p: o.next_offset for p, o in self.owned.items()}, self._ends)
        export(measure(self.positions(), self.topic), len(self.liveness.stalled))
        for p in stalled:
            CONSUMER_STALLS.labels("stalled").inc()
            log.error("bronze: %s[%d] has %d record(s) waiting and its landed offset %d has not moved for %.0f s",
                      self.topic, p, self._ends[p] - self.owned[p].next_offset, self.owned[p].next_offset,
                      self.settings.consumer_stall_timeout_s)

    def positions(self) -> dict[int, tuple[int, int | None]]:
        """Partition -> (next offset to land, broker end offset as last read) of the partitions held here."""
        return {p: (o.next_offset, self._ends.get(p)) for p, o in self.owned.items()}
