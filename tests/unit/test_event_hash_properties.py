"""Property tests (hypothesis) of the event hash: stable under key order, decimal and timestamp spelling;
different for any changed field."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scout.contract import Transaction

ident = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x24F, exclude_characters="\x7f"),
               min_size=1, max_size=20).filter(str.strip)
cents = st.integers(min_value=0, max_value=10**11 - 1)  # under numeric(12,2)'s 10^10
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),  # noqa: DTZ001
                       timezones=st.just(UTC))
settings.register_profile("scout", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("scout")


def money(c: int) -> str:
    return str(Decimal(c) / 100)


@st.composite
def line_items(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {"qty": draw(st.integers(min_value=-5, max_value=1000)),
                            "unit_price": money(draw(cents))}
    named = draw(st.sampled_from(["id", "name", "both"]))
    if named in ("id", "both"):
        item["product_id"] = draw(ident)
    if named in ("name", "both"):
        item["product_name"] = draw(text)
    for key in ("brand", "category"):
        if draw(st.booleans()):
            item[key] = draw(text)
    if draw(st.booleans()):
        item["line_amount"] = money(draw(cents))
    return item


@st.composite
def transactions(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": draw(ident), "store_id": draw(ident),
        "ts": draw(moments).isoformat().replace("+00:00", "Z"), "total_amount": money(draw(cents)),
        "items": draw(st.lists(line_items(), min_size=1, max_size=4)),
    }
    if draw(st.booleans()):
        body["currency"] = draw(st.sampled_from(["PHP", "USD", "EUR"]))
    for key in ("device_id", "customer_segment", "payment_method"):
        if draw(st.booleans()):
            body[key] = draw(ident if key == "device_id" else text)
    return body


def event_hash(body: dict[str, Any]) -> str:
    """What the API computes for this body as JSON bytes."""
    return Transaction.model_validate_json(json.dumps(body)).event_hash()


def respell(amount: str, rng: random.Random) -> str | int | float:
    """Another spelling of the same amount: 25 / "25" / "25.0" / "25.00" / "25.000" / 25.0 / " +25.00 "."""
    value = Decimal(amount)
    options: list[str | int | float] = [f"{value:.2f}", f"{value:.3f}", f" {value:.2f} ", f"+{value:.2f}",
                                        float(f"{value:.2f}")]
    if value == value.to_integral_value():
        options += [int(value), str(int(value))]
    if (value * 10) == (value * 10).to_integral_value():
        options.append(f"{value:.1f}")
    return rng.choice(options)


def respell_timestamp(ts: str, rng: random.Random) -> str:
    moment = datetime.fromisoformat(ts)
    offset = timezone(timedelta(minutes=rng.choice([0, 60, 480, -300, 330])))
    return moment.astimezone(offset).isoformat()


def shuffled(mapping: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    keys = list(mapping)
    rng.shuffle(keys)
    return {k: mapping[k] for k in keys}


@given(body=transactions(), seed=st.integers())
def test_hash_is_stable_under_key_order_and_spelling(body: dict[str, Any], seed: int) -> None:
    rng = random.Random(seed)
    variant = dict(body)
    variant["total_amount"] = respell(body["total_amount"], rng)
    variant["ts"] = respell_timestamp(body["ts"], rng)
    items = []
    for item in body["items"]:
        copy = dict(item)
        for key in ("unit_price", "line_amount"):
            if key in copy:
                copy[key] = respell(copy[key], rng)
        items.append(shuffled(copy, rng))
    variant["items"] = items
    assert event_hash(shuffled(variant, rng)) == event_hash(body)


def _changes(body: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Every single-field change of ``body`` that still validates."""
    out: list[dict[str, Any]] = []

    def top(**changes: Any) -> None:
        changed = {k: v for k, v in {**body, **changes}.items() if v is not None}
        if changed != body:
            out.append(changed)

    def line(index: int, **changes: Any) -> None:
        items = [dict(i) for i in body["items"]]
        items[index] = {k: v for k, v in {**items[index], **changes}.items() if v is not None}
        named = "product_id" in items[index] or "product_name" in items[index]
        if named and items[index] != body["items"][index]:
            out.append({**body, "items": items})

    top(transaction_id=body["transaction_id"] + "x")
    top(store_id=body["store_id"] + "x")
    moment = datetime.fromisoformat(body["ts"]) + timedelta(microseconds=rng.choice([1, 1000, 10**6, 86400 * 10**6]))
    top(ts=moment.isoformat())
    top(total_amount=str(Decimal(body["total_amount"]) + Decimal("0.01")))
    top(currency="JPY" if body.get("currency") != "JPY" else "PHP")
    for key in ("device_id", "customer_segment", "payment_method"):
        top(**{key: None if key in body else "X"})
        top(**{key: body.get(key, "") + "y"})
    for n, item in enumerate(body["items"]):
        line(n, qty=item["qty"] + 1)
        line(n, unit_price=str(Decimal(item["unit_price"]) + Decimal("0.01")))
        line(n, line_amount=None if "line_amount" in item else "0.00")
        for key in ("product_id", "product_name", "brand", "category"):
            line(n, **{key: item.get(key, "") + "z"})
            line(n, **{key: None})
    out.append({**body, "items": [*body["items"], body["items"][0]]})
    if len(body["items"]) > 1 and body["items"][0] != body["items"][1]:
        out.append({**body, "items": [body["items"][1], body["items"][0], *body["items"][2:]]})
    return out


@given(body=transactions(), seed=st.integers())
def test_hash_changes_when_any_field_changes(body: dict[str, Any], seed: int) -> None:
    original = event_hash(body)
    for changed in _changes(body, random.Random(seed)):
        assert event_hash(changed) != original, changed
