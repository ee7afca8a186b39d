"""Product linking, shared by the silver step and the re-link job: exact SKU, then exact normalised
name, then fuzzy (rapidfuzz) over a blocked candidate set, else unlinked.

Fuzzy precision comes from token alignment: every word of the name must match a word of the product
(typos allowed in long words, exact for numbers and short words) and the other way round, so
"SQUARE FLOOR CUSHION VINTAGE PINK" never links to "... VINTAGE RED", and notes like "damaged" link to
nothing.

Example::

    catalogue = Catalogue([(1, "SKU-1", "Coca-Cola 350ml")])
    catalogue.match("coca cola 350 ml")     # -> Match(product_key=1, method="fuzzy", confidence=...)
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

LinkMethod = Literal["sku", "name", "fuzzy", "unlinked"]

CONFIDENCE: dict[LinkMethod, Decimal] = {
    "sku": Decimal("1.000"),
    "name": Decimal("0.990"),
    "unlinked": Decimal("0.000"),
}

_NON_WORD = re.compile(r"[^0-9a-z]+")
_DIGIT = re.compile(r"\d")
MAX_BLOCK = 48  # candidates taken from one posting list at most
BLOCK_KEYS = 3  # the rarest keys of a name that select its candidates


def normalise_name(name: str) -> str:
    text = name if name.isascii() else unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = text.lower()
    text = text.replace("&", " and ")
    return _NON_WORD.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class Match:
    product_key: int
    method: LinkMethod
    confidence: Decimal


def _tokens_match(a: str, b: str) -> bool:
    if a == b or (len(a) >= 3 and len(b) >= 3 and (a + "s" == b or b + "s" == a)):  # plurals
        return True
    if _DIGIT.search(a) or _DIGIT.search(b) or min(len(a), len(b)) < 4 or max(len(a), len(b)) < 5:
        return False  # numbers and short words must be exact: "6" is not "4", "red" is not "rod"
    allowed = 1 if max(len(a), len(b)) < 8 else 2
    return OSA.distance(a, b, score_cutoff=allowed) <= allowed  # a transposition counts as one edit


def _aligned(query: list[str], candidate: list[str]) -> bool:
    """Each side's words all have a counterpart on the other side (typos allowed, order free)."""
    if abs(len(query) - len(candidate)) > 1:
        return False
    if "".join(query) == "".join(candidate):  # "space boy" vs "spaceboy"
        return True
    in_candidate, in_query = set(candidate), set(query)
    query_left = [t for t in query if t not in in_candidate]
    candidate_left = [t for t in candidate if t not in in_query]
    if len(query_left) > 2 or len(candidate_left) > 2:
        return False
    return all(any(_tokens_match(q, c) for c in candidate_left) for q in query_left) and all(
        any(_tokens_match(c, q) for q in query_left) for c in candidate_left
    )


def _block_keys(tokens: list[str]) -> set[str]:
    """Each word, plus the prefix and suffix of long words so that one typo still finds the product."""
    keys = set(tokens)
    for token in tokens:
        if len(token) >= 5:
            keys.add(f"<{token[:3]}")
            keys.add(f"{token[-3:]}>")
    return keys


class Catalogue:
    """An in-memory index of products for exact-name and fuzzy matching (one per worker process)."""

    def __init__(self, products: Iterable[tuple[int, str | None, str]] = (), *, threshold: float = 80.0) -> None:
        self.threshold = threshold
        self._by_norm: dict[str, int] = {}
        self._sorted: list[str] = []  # words in sorted order: plain ratio on these = token_sort_ratio
        self._keys: list[int] = []
        self._tokens: list[list[str]] = []
        self._postings: dict[str, list[int]] = defaultdict(list)
        self._posting_names: dict[str, list[str]] = defaultdict(list)  # parallel: the sorted-word names
        self._cache: dict[str, Match | None] = {}
        for key, _sku, name in products:
            self.add(key, name)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, product_key: int, name: str) -> None:
        norm = normalise_name(name)
        if not norm or norm in self._by_norm:
            return
        index = len(self._keys)
        self._by_norm[norm] = product_key
        self._keys.append(product_key)
        tokens = norm.split()
        self._tokens.append(tokens)
        sorted_name = " ".join(sorted(tokens))
        self._sorted.append(sorted_name)
        for key in _block_keys(tokens):
            self._postings[key].append(index)
            self._posting_names[key].append(sorted_name)
        self._cache.clear()

    def _block(self, tokens: list[str]) -> tuple[list[int], list[str]]:
        """Candidates from the rarest keys of the name (duplicates are harmless and cheap to score)."""
        keys = sorted((k for k in _block_keys(tokens) if k in self._postings),
                      key=lambda k: len(self._postings[k]))[:BLOCK_KEYS]
        indices: list[int] = []
        names: list[str] = []
        for key in keys:
            indices += self._postings[key][:MAX_BLOCK]
            names += self._posting_names[key][:MAX_BLOCK]
        return indices, names

    def match(self, name: str) -> Match | None:
        norm = normalise_name(name)
        if not norm:
            return None
        exact = self._by_norm.get(norm)
        if exact is not None:
            return Match(exact, "name", CONFIDENCE["name"])
        if norm in self._cache:
            return self._cache[norm]
        result = self._fuzzy(norm)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[norm] = result
        return result

    def _fuzzy(self, norm: str) -> Match | None:
        tokens = norm.split()
        block, names = self._block(tokens)
        if not block:
            return None
        for _name, score, position in process.extract(" ".join(sorted(tokens)), names, scorer=fuzz.ratio,
                                                      score_cutoff=self.threshold, limit=3):
            index = block[position]
            if _aligned(tokens, self._tokens[index]):
                confidence = Decimal(str(round(score / 100, 3))).min(Decimal("0.980"))
                return Match(self._keys[index], "fuzzy", confidence)
        return None
