"""Single publishes go in rounds: the requests of one turn of the event loop share one ``publish_many``, a round
waits for the previous one's acks, and an envelope never handed to the producer is never sent."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from ingest_api.publisher import Ack, Publisher
from scout.contract import Envelope, Transaction
from scout.errors import PublishUnavailable
from scout.settings import Settings
from tests.factories import tx_dict


def _envelopes(count: int) -> list[Envelope]:
    return [Envelope.wrap(Transaction.model_validate(tx_dict(n)), source="api") for n in range(count)]


class Rounds:
    """Stands in for ``Publisher.publish_many``: records each round; ``hold`` keeps the first round waiting."""

    def __init__(self, fail: bool = False) -> None:
        self.rounds: list[list[Envelope]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.fail = fail

    async def __call__(self, envelopes: Sequence[Envelope], *, batched: bool | None = None,
                      timeout_s: float | None = None) -> list[Ack | PublishUnavailable]:
        assert batched is True and timeout_s is not None and timeout_s > 0
        self.rounds.append(list(envelopes))
        await self.hold.wait()
        if self.fail:
            return [PublishUnavailable("no acknowledgement in time") for _ in envelopes]
        first = sum(len(r) for r in self.rounds[:-1])
        return [Ack(0, first + n) for n in range(len(envelopes))]


def _publisher(rounds: Rounds, timeout_s: float = 5.0) -> Publisher:
    publisher = Publisher(Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, produce_timeout_s=timeout_s))
    publisher.publish_many = rounds  # type: ignore[method-assign]
    return publisher


def test_the_requests_of_one_turn_go_as_one_round_and_each_gets_its_own_ack() -> None:
    envelopes = _envelopes(64)

    async def run() -> tuple[list[Ack], Rounds]:
        rounds = Rounds()
        publisher = _publisher(rounds)
        return list(await asyncio.gather(*(publisher.publish(e) for e in envelopes))), rounds

    acks, rounds = asyncio.run(run())
    assert rounds.rounds == [envelopes]
    assert acks == [Ack(0, n) for n in range(64)]


def test_requests_arriving_while_a_round_waits_go_together_in_the_next() -> None:
    first, later = _envelopes(3)[:1], _envelopes(40)[3:]

    async def run() -> Rounds:
        rounds = Rounds()
        rounds.hold.clear()
        publisher = _publisher(rounds)
        waiting = asyncio.gather(*(publisher.publish(e) for e in first))
        while not rounds.rounds:  # the first round is with the producer
            await asyncio.sleep(0)
        more = asyncio.gather(*(publisher.publish(e) for e in later))
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(rounds.rounds) == 1  # the next round waits for the first one's acks
        rounds.hold.set()
        await waiting
        await more
        return rounds

    assert asyncio.run(run()).rounds == [first, later]


def test_a_failed_round_answers_each_of_its_requests_unavailable() -> None:
    async def run() -> list[object]:
        publisher = _publisher(Rounds(fail=True))
        return list(await asyncio.gather(*(publisher.publish(e) for e in _envelopes(5)), return_exceptions=True))

    assert all(isinstance(r, PublishUnavailable) for r in asyncio.run(run()))


def test_a_request_whose_time_ran_out_before_its_round_is_answered_and_never_sent() -> None:
    first, late = _envelopes(2)

    async def run() -> tuple[Rounds, BaseException | None]:
        rounds = Rounds()
        rounds.hold.clear()
        publisher = _publisher(rounds, timeout_s=0.2)
        held = asyncio.ensure_future(publisher.publish(first))
        while not rounds.rounds:
            await asyncio.sleep(0)
        waiting = asyncio.ensure_future(publisher.publish(late))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.2
        while loop.time() <= deadline + 0.05:  # the late request's time runs out while the first round waits
            await asyncio.sleep(0.01)
        rounds.hold.set()
        await held
        try:
            await waiting
        except PublishUnavailable as exc:
            return rounds, exc
        return rounds, None

    rounds, refused = asyncio.run(run())
    assert isinstance(refused, PublishUnavailable) and "not sent" in str(refused)
    assert rounds.rounds == [[first]]


def test_a_cancelled_request_waiting_for_its_round_is_never_sent() -> None:
    first, cancelled, kept = _envelopes(3)

    async def run() -> Rounds:
        rounds = Rounds()
        rounds.hold.clear()
        publisher = _publisher(rounds)
        held = asyncio.ensure_future(publisher.publish(first))
        while not rounds.rounds:
            await asyncio.sleep(0)
        gone = asyncio.ensure_future(publisher.publish(cancelled))
        stays = asyncio.ensure_future(publisher.publish(kept))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        rounds.hold.set()
        await held
        await stays
        return rounds

    assert asyncio.run(run()).rounds == [[first], [kept]]
