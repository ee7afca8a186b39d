"""Deterministic point-of-sale traffic: the same seed gives the same transactions.

Example::

    gen = Generator(seed=42)
    tx = gen.transaction(0)          # a dict in the pos.transactions.v1 shape
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CATEGORIES = {
    "beverages": ["Cola 350ml", "Orange Juice 1L", "Mineral Water 500ml", "Iced Tea 500ml", "Coffee 3in1"],
    "snacks": ["Potato Chips 60g", "Chocolate Bar", "Peanuts 100g", "Crackers Pack", "Cheese Rings"],
    "household": ["Dish Soap 500ml", "Laundry Powder 1kg", "Tissue Roll 4s", "Trash Bags 10s"],
    "personal care": ["Shampoo 180ml", "Toothpaste 100g", "Bath Soap 90g", "Deodorant 40ml"],
    "grocery": ["Rice 1kg", "Instant Noodles", "Canned Sardines", "Cooking Oil 1L", "Sugar 1kg"],
}
SEGMENTS = ("premium", "budget", "family", "student")
PAYMENTS = ("cash", "card", "ewallet")
MAX_BASKET = Decimal("5000")  # keep honest traffic under the over_threshold guardrail


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price: Decimal


class Generator:
    def __init__(self, seed: int = 42, *, stores: int = 20, start: datetime | None = None) -> None:
        self.seed = seed
        self.stores = [f"STORE-{n:03d}" for n in range(1, stores + 1)]
        self.start = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        rng = random.Random(seed)
        self.products: list[Product] = []
        for category, names in CATEGORIES.items():
            for name in names:
                price = Decimal(rng.randint(15, 600)) + Decimal(rng.choice([0, 25, 50, 75])) / 100
                self.products.append(Product(f"SKU-{len(self.products) + 1:04d}", name, category, price))

    def transaction(self, n: int) -> dict[str, Any]:
        """The n-th transaction of this seed's stream (independent of any other n)."""
        rng = random.Random(f"{self.seed}:{n}")
        store = rng.choice(self.stores)
        count = rng.choices([1, 2, 3, 4, 6, 10], weights=[20, 25, 20, 15, 12, 8])[0]
        items: list[dict[str, Any]] = []
        total = Decimal(0)
        for product in rng.sample(self.products, k=min(count, len(self.products))):
            qty = rng.choices([1, 2, 3, 6], weights=[60, 25, 10, 5])[0]
            line = product.price * qty
            if items and total + line > MAX_BASKET:
                break
            total += line
            items.append({
                "product_id": product.product_id, "product_name": product.name, "category": product.category,
                "qty": qty, "unit_price": str(product.price), "line_amount": str(line),
            })
        ts = self.start + timedelta(seconds=n * 7 + rng.randint(0, 6))
        return {
            "transaction_id": f"TXN-{self.seed}-{n:08d}", "store_id": store, "ts": ts.isoformat(),
            "total_amount": str(total), "currency": "PHP", "device_id": f"POS-{rng.randint(1, 4)}",
            "customer_segment": rng.choice(SEGMENTS), "payment_method": rng.choice(PAYMENTS), "items": items,
        }
