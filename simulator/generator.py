"""Deterministic, realistic point-of-sale traffic: the same seed gives the same transactions.

Stores sit in regions with their own size and time zone; a catalogue of branded products in weighted
categories; customer segments (premium, budget, family, student) shape basket size and price mix; traffic
follows daily peaks (morning, lunch, evening) and a weekly rhythm (busier Fridays and weekends).

Example::

    gen = Generator(seed=42)
    tx = gen.transaction(0)          # a dict in the pos.transactions.v1 shape
    gen.transaction(0) == tx         # any n, any order: same result
    live = Generator.live(42, rate=20)   # transaction n stamped now + n/20 s: a feed sent at 20/s runs at real time

The default clock is simulated and deterministic (from Monday 2026-01-05 00:00 UTC, ``per_day`` transactions a
simulated day along the daily and weekly curves): what UAT and the benchmarks replay with a seed.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CATEGORIES: dict[str, list[str]] = {
    "beverages": ["Cola 350ml", "Orange Juice 1L", "Mineral Water 500ml", "Iced Tea 500ml", "Coffee 3in1"],
    "snacks": ["Potato Chips 60g", "Chocolate Bar", "Peanuts 100g", "Crackers Pack", "Cheese Rings"],
    "household": ["Dish Soap 500ml", "Laundry Powder 1kg", "Tissue Roll 4s", "Trash Bags 10s"],
    "personal care": ["Shampoo 180ml", "Toothpaste 100g", "Bath Soap 90g", "Deodorant 40ml"],
    "grocery": ["Rice 1kg", "Instant Noodles", "Canned Sardines", "Cooking Oil 1L", "Sugar 1kg"],
}
CATEGORY_WEIGHTS = {"beverages": 30, "snacks": 25, "grocery": 20, "household": 13, "personal care": 12}
BRANDS = {"value": ("Sulit", "Tipid"), "standard": ("Masarap", "Linis", "Fresh&Co"), "premium": ("Royale", "Prima")}
PRICE_FACTOR = {"value": Decimal("0.75"), "standard": Decimal("1.00"), "premium": Decimal("1.60")}
REGIONS = (  # name, time zone, UTC offset in hours, share of stores, typical store size
    ("NCR", "Asia/Manila", 8, 0.40, 3.0), ("Central Luzon", "Asia/Manila", 8, 0.20, 1.5),
    ("Visayas", "Asia/Manila", 8, 0.20, 1.2), ("Mindanao", "Asia/Manila", 8, 0.15, 1.0),
    ("Guam", "Pacific/Guam", 10, 0.05, 0.8),
)
SEGMENTS = {  # share, basket sizes (weights), tier mix (value, standard, premium), quantity bias, categories
    "premium": (0.15, {2: 3, 3: 3, 4: 2, 6: 1}, (0.05, 0.45, 0.50), 1, None),
    "budget": (0.35, {1: 4, 2: 3, 3: 2}, (0.70, 0.28, 0.02), 1, None),
    "family": (0.30, {4: 2, 6: 3, 8: 2, 10: 1}, (0.30, 0.60, 0.10), 2, None),
    "student": (0.20, {1: 4, 2: 3, 3: 1}, (0.50, 0.45, 0.05), 1, ("beverages", "snacks")),
}
PAYMENTS = ("cash", "card", "ewallet")
MAX_BASKET = Decimal("5000")  # keep honest traffic under the over_threshold guardrail
# traffic by local hour: quiet nights, morning, lunch and evening peaks
HOURLY = (0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.4, 1.5, 1.0, 1.0, 1.6, 1.8, 1.2, 0.9, 0.9, 1.1, 1.8, 2.0, 1.7,
          1.2, 0.8, 0.5, 0.2)
WEEKDAY = (0.9, 0.9, 0.95, 1.0, 1.15, 1.3, 1.25)  # Monday .. Sunday


@dataclass(frozen=True)
class Store:
    store_id: str
    region: str
    timezone: str
    utc_offset: int
    size: float


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    brand: str
    category: str
    tier: str
    price: Decimal


def _week_curve(offset_hours: int) -> list[float]:
    """Cumulative traffic share over the 168 UTC hours of a week, for stores at this UTC offset."""
    weights = []
    for utc_hour in range(168):
        local = utc_hour + offset_hours
        weights.append(HOURLY[local % 24] * WEEKDAY[(local // 24) % 7])
    total = sum(weights)
    cumulative, running = [], 0.0
    for w in weights:
        running += w / total
        cumulative.append(running)
    return cumulative


class Generator:
    """Transaction n of a seed's stream: ``transaction(n)`` (pure function of seed and n)."""

    def __init__(self, seed: int = 42, *, stores: int = 20, per_day: int = 12_000,
                 start: datetime | None = None, rate: float | None = None) -> None:
        self.seed = seed
        self.per_day = per_day
        self.start = start or datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC
        self.rate = rate  # set: a live clock, transaction n at start + n/rate seconds
        rng = random.Random(seed)
        self.store_list = self._stores(rng, stores)
        self.stores = [s.store_id for s in self.store_list]
        self._store_weights = list(_accumulate([s.size for s in self.store_list]))
        self.products = self._products(rng)
        self._by_category_tier: dict[tuple[str, str], list[Product]] = {}
        for p in self.products:
            self._by_category_tier.setdefault((p.category, p.tier), []).append(p)
        self._curve = _week_curve(8)

    @staticmethod
    def _stores(rng: random.Random, count: int) -> list[Store]:
        result = []
        for n in range(1, count + 1):
            name, tz, offset, _, size = rng.choices(REGIONS, weights=[r[3] for r in REGIONS])[0]
            result.append(Store(f"STORE-{n:03d}", name, tz, offset, round(size * rng.uniform(0.6, 1.4), 2)))
        return result

    @staticmethod
    def _products(rng: random.Random) -> list[Product]:
        products: list[Product] = []
        for category, names in CATEGORIES.items():
            for name in names:
                base = Decimal(rng.randint(15, 300)) + Decimal(rng.choice([0, 25, 50, 75])) / 100
                for tier, brands in BRANDS.items():
                    brand = rng.choice(brands)
                    price = (base * PRICE_FACTOR[tier]).quantize(Decimal("0.01"))
                    products.append(Product(f"SKU-{len(products) + 1:04d}", f"{brand} {name}", brand, category,
                                            tier, price))
        return products

    @classmethod
    def live(cls, seed: int, *, rate: float, start: datetime | None = None, stores: int = 20) -> Generator:
        """A live clock: transaction n is stamped ``start`` (default: now) + n/``rate`` seconds, so a feed that
        sends at ``rate`` per second carries the current time and runs at real time."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        return cls(seed, stores=stores, start=start or datetime.now(UTC), rate=rate)

    def timestamp(self, n: int) -> datetime:
        """Monotone in n: the n-th arrival of a week-periodic traffic curve at ``per_day`` a day (simulated
        clock), or ``start`` + n/rate seconds (live clock)."""
        if self.rate is not None:
            return self.start + timedelta(seconds=n / self.rate)
        per_week = self.per_day * 7
        week, within = divmod(n, per_week)
        share = (within + 0.5) / per_week
        hour = bisect.bisect_left(self._curve, share)
        before = self._curve[hour - 1] if hour else 0.0
        fraction = (share - before) / (self._curve[hour] - before)
        return self.start + timedelta(weeks=week, hours=hour + fraction)

    def transaction(self, n: int) -> dict[str, Any]:
        """The n-th transaction of this seed's stream (independent of any other n)."""
        rng = random.Random(f"{self.seed}:{n}")
        store = self.store_list[bisect.bisect_left(self._store_weights, rng.random() * self._store_weights[-1])]
        segment = rng.choices(list(SEGMENTS), weights=[s[0] for s in SEGMENTS.values()])[0]
        _, sizes, tiers, qty_bias, only = SEGMENTS[segment]
        count = rng.choices(list(sizes), weights=list(sizes.values()))[0]
        items: list[dict[str, Any]] = []
        total = Decimal(0)
        chosen: set[str] = set()
        for _ in range(count):
            categories = list(only or CATEGORY_WEIGHTS)
            category = rng.choices(categories, weights=[CATEGORY_WEIGHTS[c] for c in categories])[0]
            tier = rng.choices(("value", "standard", "premium"), weights=tiers)[0]
            product = rng.choice(self._by_category_tier[(category, tier)])
            if product.product_id in chosen:
                continue
            qty = rng.choices([1, 2, 3, 6], weights=[60, 25, 10, 5])[0] * (qty_bias if rng.random() < 0.3 else 1)
            line = product.price * qty
            if items and total + line > MAX_BASKET:
                break
            chosen.add(product.product_id)
            total += line
            items.append({
                "product_id": product.product_id, "product_name": product.name, "brand": product.brand,
                "category": product.category, "qty": qty, "unit_price": str(product.price),
                "line_amount": str(line),
            })
        return {
            "transaction_id": f"TXN-{self.seed}-{n:08d}", "store_id": store.store_id,
            "ts": self.timestamp(n).isoformat(), "total_amount": str(total), "currency": "PHP",
            "device_id": f"POS-{rng.randint(1, 4)}", "customer_segment": segment,
            "payment_method": rng.choice(PAYMENTS), "items": items,
        }


def _accumulate(values: list[float]) -> list[float]:
    out, running = [], 0.0
    for v in values:
        running += v
        out.append(running)
    return out
