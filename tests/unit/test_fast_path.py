"""The single-POST fast path answers every request exactly as the FastAPI route does (status, headers, body),
and it is the one that answers a plain single POST."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingest_api import fastpath
from ingest_api.app import create_app
from ingest_api.fastpath import SinglePostFastPath
from ingest_api.publisher import Ack
from ingest_api.schemas import AcceptedResponse
from ingest_api.service import accepted
from scout.contract import Envelope, Transaction
from scout.settings import Settings
from tests.unit.fakes import FakeIdempotency, FakePublisher, FakeTokens
from tests.unit.payloads import payload

ODD = "St\u00f6re \u2028 \"q\" \\ / \x7f \U0001f600 <&>"  # text JSON encoders might spell differently
Case = Callable[[FakeTokens], tuple[dict[str, str], bytes]]


def _json(**overrides: Any) -> bytes:
    return orjson.dumps(payload(**overrides))


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


CASES: dict[str, Case] = {
    "accepted": lambda t: (_bearer(t.add()), _json()),
    "odd text": lambda t: (_bearer(t.add()), _json(store_id=ODD, transaction_id=ODD[::-1], customer_segment=ODD)),
    "no token": lambda t: ({}, _json()),
    "basic auth": lambda t: ({"Authorization": "Basic dXNlcjpwYXNz"}, _json()),
    "malformed token": lambda t: (_bearer("not-a-token"), _json()),
    "unknown token": lambda t: (_bearer("sct_" + "A" * 40), _json()),
    "revoked token": lambda t: (_bearer(t.add(revoked=True)), _json()),
    "read scope": lambda t: (_bearer(t.add(scopes=["read"])), _json()),
    "other store": lambda t: (_bearer(t.add(stores=["STORE-999"])), _json()),
    "other device": lambda t: (_bearer(t.add(device="DEV-OTHER")), _json(device_id="DEV-1")),
    "empty body": lambda t: (_bearer(t.add()), b""),
    "not json": lambda t: (_bearer(t.add()), b"{nope"),
    "invalid field": lambda t: (_bearer(t.add()), _json(total="abc")),
    "too large": lambda t: (_bearer(t.add()), b" " * 2_000 + _json()),
    "rate limited": lambda t: (_bearer(t.add(rate=0.001)), _json()),
    "idempotency key": lambda t: ({**_bearer(t.add()), "Idempotency-Key": "k-1"}, _json()),
    "bad idempotency key": lambda t: ({**_bearer(t.add()), "Idempotency-Key": "k" * 300}, _json()),
}


def _app(publisher: FakePublisher, tokens: FakeTokens, *, fast: bool) -> FastAPI:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", database_url=None, retry_after_s=7, api_max_body_bytes=1_500,
                        rate_limit_burst_s=1)
    app = create_app(settings, publisher=publisher, tokens=tokens, idempotency=FakeIdempotency())  # type: ignore[arg-type]
    if not fast:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not SinglePostFastPath]
    return app


Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers in order, body


def _answers(case: Case, *, fast: bool, down: bool = False, repeat: int = 1) -> list[Answer]:
    publisher, tokens = FakePublisher(), FakeTokens()
    publisher.down = down
    headers, body = case(tokens)
    answers = []
    with TestClient(_app(publisher, tokens, fast=fast)) as client:
        for _ in range(repeat):
            response = client.post("/v1/transactions", content=body, headers=headers)
            kept = [(k, v) for k, v in response.headers.multi_items() if k not in {"date", "server"}]
            answers.append((response.status_code, kept, response.content))
    return answers


@pytest.mark.parametrize("name", list(CASES))
def test_the_fast_path_answers_as_the_route_does(name: str) -> None:
    repeat = 2 if name in {"rate limited", "accepted", "odd text"} else 1  # the second accepted: a duplicate
    fast = _answers(CASES[name], fast=True, repeat=repeat)
    assert fast == _answers(CASES[name], fast=False, repeat=repeat)


def test_kafka_down_is_the_same_503_on_both_paths() -> None:
    fast = _answers(CASES["accepted"], fast=True, down=True)
    assert fast == _answers(CASES["accepted"], fast=False, down=True)
    assert fast[0][0] == 503 and dict(fast[0][1])["retry-after"] == "7"


def test_a_plain_single_post_is_answered_by_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str] = []
    original = fastpath.send_reply

    async def counting(*args: Any, **kwargs: Any) -> Any:
        served.append("fast")
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastpath, "send_reply", counting)
    answers = _answers(CASES["accepted"], fast=True) + _answers(CASES["idempotency key"], fast=True)
    assert [status for status, _, _ in answers] == [202, 202]
    assert served == ["fast"]  # the request with an Idempotency-Key went to the route


@pytest.mark.parametrize("duplicate", [False, True])
@pytest.mark.parametrize("text", ["STORE-001", ODD, "x\u2029y", "\U0010ffff"])
def test_the_pre_encoded_202_is_the_documented_models_json(text: str, duplicate: bool) -> None:
    envelope = Envelope.wrap(Transaction.model_validate(payload(store_id=text, transaction_id=text[::-1])),
                             source="api")
    model = AcceptedResponse(status="duplicate" if duplicate else "accepted", duplicate=duplicate,
                             event_hash=envelope.event_hash, store_id=text, transaction_id=text[::-1], partition=2,
                             offset=1041)
    assert accepted(envelope, Ack(2, 1041), duplicate=duplicate) == model.model_dump_json().encode()
