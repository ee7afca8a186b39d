"""Product linking, shared by the silver step and the re-link job: exact SKU, then exact normalised
name, then fuzzy (rapidfuzz) over a blocked candidate set, then receipt reading (words run together or
split, vowels dropped, abbreviations; streams/silver/wordmatch.py), else unlinked.

Precision comes from word alignment: every word of the name must match a word of the product (typos
allowed in long words, exact for numbers and short words, abbreviations only for words the catalogue does
not know or that have no vowel) and the other way round, so "SQUARE FLOOR CUSHION VINTAGE PINK" never
links to "... VINTAGE RED", and notes like "damaged" link to nothing. A name that two products could
both explain links to neither.

Example::

    catalogue = Catalogue([(1, "SKU-1", "Coca-Cola 350ml")])
    catalogue.match("coca cola 350 ml")     # -> Match(product_key=1, method="fuzzy", confidence=...)
    catalogue.learn("XMAS TREE", 7)         # a name printed beside SKU 7's product: receipt words to learn
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

from streams.silver.wordmatch import align, learn_pair, stem, vowelless

LinkMethod = Literal["sku", "alias", "name", "fuzzy", "unlinked"]

CONFIDENCE: dict[LinkMethod, Decimal] = {
    "sku": Decimal("1.000"),
    "name": Decimal("0.990"),
    "unlinked": Decimal("0.000"),
}

_NON_WORD = re.compile(r"[^0-9a-z]+")
_DIGIT = re.compile(r"\d")
MAX_BLOCK = 48  # candidates taken from one posting list at most
BLOCK_KEYS = 3  # the rarest keys of a name that select its candidates
MAX_RECEIPT_CANDIDATES = 256  # products aligned word by word for one receipt name at most
LEARNED_SUPPORT = 2  # products a receipt word must be confirmed for (by SKU) before it is read as learned
RECEIPT_BASE = Decimal("0.950")  # a receipt reading's confidence: this minus the cost of each word read


# Unicode dashes, quotes and apostrophes folded to their ASCII form before accents are dropped, so "T-LIGHT"
# printed with an en dash reads as "T-LIGHT", not "TLIGHT".
_FOLD = str.maketrans({**dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63", "-"),
                       **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc\u0060\u00b4", "'"),
                       **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"')})


def normalise_name(name: str) -> str:
    """Lower-case ASCII words: NFKC (full-width forms, ligatures), punctuation folded, accents dropped."""
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name).translate(_FOLD)
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = name
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
        self._stems: dict[str, set[int]] = defaultdict(set)  # word stem -> indices of products using it
        self._vocab: set[str] = set()  # every catalogue word
        self._by_letter: dict[str, list[str]] | None = None  # vocabulary by first letter (built when needed)
        self._pairs: dict[tuple[str, str], set[int]] = defaultdict(set)  # (receipt word, word) -> products
        self.learned: dict[str, set[str]] = defaultdict(set)  # receipt word -> catalogue words it stands for
        self._key_index: dict[int, int] = {}
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
        for token in tokens:
            self._stems[stem(token)].add(index)
        self._vocab.update(tokens)
        self._by_letter = None
        self._key_index.setdefault(product_key, index)
        self._cache.clear()

    def learn(self, name: str, product_key: int) -> bool:
        """Learn from a name confirmed by SKU to be ``product_key``: a receipt word that stands for one of
        the product's words ("XMAS" for "CHRISTMAS") is read so once LEARNED_SUPPORT products confirm it."""
        index = self._key_index.get(product_key)
        if index is None:
            return False
        pair = learn_pair(normalise_name(name).split(), self._tokens[index], self._vocab)
        if pair is None:
            return False
        self._pairs[pair].add(product_key)
        if len(self._pairs[pair]) >= LEARNED_SUPPORT and pair[1] not in self.learned[pair[0]]:
            self.learned[pair[0]].add(pair[1])
            self._cache.clear()
        return True

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
        result = self._fuzzy(norm) or self._receipt(norm.split())
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[norm] = result
        return result

    def _fuzzy(self, norm: str) -> Match | None:
        tokens = norm.split()
        block, names = self._block(tokens)
        if not block:
            return None
        found: list[tuple[float, int]] = []
        for _name, score, position in process.extract(" ".join(sorted(tokens)), names, scorer=fuzz.ratio,
                                                      score_cutoff=self.threshold, limit=3):
            index = block[position]
            if _aligned(tokens, self._tokens[index]) and all(index != i for _, i in found):
                found.append((score, index))
        if found and (len(found) == 1 or found[1][0] < found[0][0]):  # a tie between two products: refused
            score, index = found[0]
            confidence = Decimal(str(round(score / 100, 3))).min(Decimal("0.980"))
            return Match(self._keys[index], "fuzzy", confidence)
        return None

    def _candidates(self, tokens: list[str]) -> set[int]:
        """Products holding every catalogue word of the name (the parts of a word run together too, where
        they fit; else all but one word, which may be split), narrowed by what an unknown word may
        abbreviate when that leaves too many; with no catalogue word, by the longest word alone."""
        hard = [stem(t) for t in tokens if t in self._vocab and not vowelless(t)]
        soft = [stem(w) for t in tokens if t not in self._vocab and not vowelless(t) for w in self._split(t)]
        found: set[int] = set()
        for keys in ([*hard, *soft], hard, soft):
            if keys:
                found = self._all(keys)
                if found:
                    break
        if not found and len(hard) >= 2:
            for skip in range(len(hard)):
                found |= self._all(hard[:skip] + hard[skip + 1:])
        unknown = [t for t in tokens if t not in self._vocab or vowelless(t)]
        if (not found and not hard and not soft) or (len(found) > MAX_RECEIPT_CANDIDATES and unknown):
            near: set[int] = set()
            for word in self._expansions(max(unknown, key=len)):
                near |= self._stems[stem(word)]
            found = found & near if found else near
        return found

    def _all(self, keys: list[str]) -> set[int]:
        ordered = sorted(keys, key=lambda k: len(self._stems.get(k, ())))
        return set.intersection(*(self._stems.get(k, set()) for k in ordered))

    def _split(self, token: str) -> list[str]:
        """Two catalogue words ``token`` runs together ("tlight" -> "t", "light"), the most even split; a
        part of one letter only beside a part of four or more."""
        splits = [(a, b) for a, b in ((token[:k], token[k:]) for k in range(1, len(token)))
                  if a in self._vocab and (b in self._vocab or stem(b) in self._stems)
                  and (min(len(a), len(b)) >= 2 or max(len(a), len(b)) >= 4)]
        if not splits:
            return []
        a, b = max(splits, key=lambda split: min(len(split[0]), len(split[1])))
        return [a, b]

    def _expansions(self, token: str) -> list[str]:
        """Catalogue words ``token`` may stand for: learned, or sharing its first letter and holding its
        letters in order."""
        by_letter = self._by_letter
        if by_letter is None:
            by_letter = self._by_letter = defaultdict(list)
            for word in self._vocab:
                by_letter[word[0]].append(word)
        pattern = re.compile(".*?".join(map(re.escape, token)))
        words = [w for w in by_letter.get(token[0], []) if len(w) > len(token) and pattern.match(w)]
        return words + sorted(self.learned.get(token, ()))

    def _receipt(self, tokens: list[str]) -> Match | None:
        """The one product whose words the name's words can all be read as (None if none, or several)."""
        candidates = self._candidates(tokens)
        if not candidates or len(candidates) > MAX_RECEIPT_CANDIDATES:
            return None
        found: list[tuple[float, int]] = []
        for index in candidates:
            product = self._tokens[index]
            if abs(len(product) - len(tokens)) > 3:
                continue
            cost = align(tokens, product, self._vocab, self.learned)
            if cost is not None:
                found.append((cost, index))
                if len(found) > 1:
                    return None  # two products explain the name: refused, not guessed
        if not found:
            return None
        cost, index = found[0]
        confidence = (RECEIPT_BASE - Decimal(str(round(cost, 3)))).max(Decimal("0.500"))
        return Match(self._keys[index], "fuzzy", confidence)
