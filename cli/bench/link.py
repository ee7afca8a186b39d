"""Fuzzy product linking throughput: novel (uncached) names per second against a 10,000-product catalogue."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from simulator.generator import CATEGORIES
from streams.silver.linking import Catalogue

WORDS = sorted({w.lower() for names in CATEGORIES.values() for n in names for w in n.split() if w.isalpha()} | {
    "vintage", "retro", "pink", "blue", "green", "white", "black", "small", "large", "set", "heart", "ceramic",
    "wooden", "glass", "metal", "candle", "holder", "lantern", "garland", "christmas", "floral", "spotty",
    "cushion", "cover", "mug", "bowl", "plate", "box", "bag", "tin", "jar", "card", "gift", "wrap", "paper",
    "doormat", "clock", "frame", "photo", "sign", "hook", "bottle", "water", "hot", "lunch", "cake", "stand",
})


def _rare_words(rng: random.Random, count: int) -> list[str]:
    consonants, vowels = "bcdfghklmnprstvwz", "aeiou"
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _catalogue_names(rng: random.Random, size: int) -> list[str]:
    """Names like a retail catalogue's: a few common words plus Zipf-distributed rarer ones."""
    rare = _rare_words(rng, 4000)
    weights = [1 / (rank + 1) for rank in range(len(rare))]
    names: set[str] = set()
    while len(names) < size:
        words = rng.sample(WORDS, rng.randint(1, 2)) + rng.choices(rare, weights=weights, k=rng.randint(2, 3))
        rng.shuffle(words)
        names.add(" ".join(words).upper())
    return sorted(names)


def _variant(rng: random.Random, name: str) -> str:
    words = name.split()
    i = rng.randrange(len(words))
    word = words[i]
    if len(word) >= 5:
        j = rng.randrange(1, len(word) - 1)
        words[i] = word[:j] + word[j + 1:]
    elif len(words) > 2:
        words[i], words[i - 1] = words[i - 1], words[i]
    return "  ".join(words).lower()


def bench_link(*, products: int = 10_000, names: int = 20_000, repeats: int = 3) -> dict[str, Any]:
    rng = random.Random(7)
    catalogue_names = _catalogue_names(rng, products)
    rates, hit_rates = [], []
    for repeat in range(repeats):
        catalogue = Catalogue((key, None, name) for key, name in enumerate(catalogue_names, start=1))
        queries = [_variant(random.Random(repeat * 1_000_003 + n), rng.choice(catalogue_names)) for n in range(names)]
        started = time.perf_counter()
        hits = sum(1 for name in queries if catalogue.match(name) is not None)
        rates.append(names / (time.perf_counter() - started))
        hit_rates.append(hits / names)
    return {"products": products, "names_per_repeat": names, "repeats": repeats,
            "names_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
            "linked_share": statistics.median(hit_rates)}
