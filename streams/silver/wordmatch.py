"""Word-by-word alignment of a receipt name with a catalogue name: exact words, plurals, typos, words run
together or split, and abbreviations (consonant skeleton, prefix, ordered subsequence, learned pairs).

A word that is itself a catalogue word stands for that word only, so "BLUE" never matches "BLACK"; only
words the catalogue does not know, or that have no vowel after their first letter ("HLDR", "BLK": no
English word, an abbreviation even where a catalogue name prints it), are read as abbreviations; numbers
must be exact.
Every word on each side must be used, so colour, size and number siblings never align.

Example::

    align("wht heart tlight hldr".split(), "white heart t light holder".split(), vocab, {})  # -> 0.12 (the cost)
    align("blue heart".split(), "black heart".split(), vocab, {})                            # -> None
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from rapidfuzz.distance import OSA

VOWELS = frozenset("aeiou")
_DIGIT = re.compile(r"\d")
MAX_LEFT = 4  # words left on one side after exact matches: more is too little evidence to align

# What each kind of word correspondence costs; a match's confidence is 0.95 minus the sum.
COST_PLURAL = 0.0
COST_JOINED = 0.02  # "TLIGHT" for "T LIGHT", "SPACE BOY" for "SPACEBOY"
COST_LEARNED = 0.04  # a pair confirmed by SKU ("XMAS" for "CHRISTMAS")
COST_SKELETON = 0.05  # vowels dropped ("HLDR" for "HOLDER")
COST_TYPO = 0.06
COST_PREFIX = 0.08  # "DECOR" for "DECORATION"
COST_SUBSEQUENCE = 0.10  # "BLK" for "BLACK"


def stem(word: str) -> str:
    """The word without a plural ``s`` (``holders`` -> ``holder``; short words are kept)."""
    return word[:-1] if len(word) >= 4 and word.endswith("s") and not word.endswith("ss") else word


def skeleton(word: str) -> str:
    """First letter, then the consonants with doubled letters collapsed: ``glass`` -> ``gls``."""
    out = word[:1]
    for ch in word[1:]:
        if ch not in VOWELS and ch != out[-1]:
            out += ch
    return out


def vowelless(word: str) -> bool:
    """No vowel after the first letter and no digit: an abbreviation ("hldr", "blk", "asstd")."""
    return len(word) >= 2 and word.isalpha() and not VOWELS.intersection(word[1:]) and "y" not in word[1:]


def is_subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def typo(a: str, b: str) -> bool:
    """One edit in words of 5-7 letters, two from 8 (a transposition is one); never in numbers."""
    if _DIGIT.search(a) or _DIGIT.search(b) or min(len(a), len(b)) < 4 or max(len(a), len(b)) < 5:
        return False
    allowed = 1 if max(len(a), len(b)) < 8 else 2
    return OSA.distance(a, b, score_cutoff=allowed) <= allowed


def abbreviation_cost(short: str, word: str) -> float | None:
    """How ``short`` (a word the catalogue does not know) abbreviates ``word``, or None."""
    if len(short) < 2 or len(short) >= len(word) or short[0] != word[0] or _DIGIT.search(short + word):
        return None
    if skeleton(short) == skeleton(word) and len(short) >= 3:
        return COST_SKELETON
    if len(short) >= 3 and word.startswith(short):
        return COST_PREFIX
    if len(short) * 2 >= len(skeleton(word)) and is_subsequence(short, word):
        return COST_SUBSEQUENCE
    return None


def word_cost(q: str, p: str, vocab: Collection[str], learned: Mapping[str, Collection[str]]) -> float | None:
    """What it costs to read receipt word ``q`` as catalogue word ``p`` (None: it cannot be)."""
    if q == p or stem(q) == stem(p):
        return COST_PLURAL
    known = q in vocab and not vowelless(q)
    if known and p in vocab:
        return None  # two different catalogue words are two different things ("black" is not "blank")
    costs = [COST_TYPO] if typo(q, p) else []
    if not known:
        if p in learned.get(q, ()):
            costs.append(COST_LEARNED)
        if (cost := abbreviation_cost(q, p)) is not None:
            costs.append(cost)
    return min(costs, default=None)


def _take_common(query: list[str], product: list[str]) -> tuple[list[str], list[str]]:
    """Remove the words (or plurals) both sides share; return what is left of each."""
    left = list(product)
    rest: list[str] = []
    for q in query:
        for i, p in enumerate(left):
            if q == p or stem(q) == stem(p):
                del left[i]
                break
        else:
            rest.append(q)
    return rest, left


def _pair_for(word: str, words: list[str]) -> tuple[int, int] | None:
    """Two of ``words`` that, run together, make ``word`` (a plural ``s`` aside)."""
    for i, a in enumerate(words):
        if not word.startswith(a):
            continue
        for j, b in enumerate(words):
            if i != j and stem(a + b) == stem(word):
                return i, j
    return None


def _joins(query: list[str], product: list[str]) -> tuple[list[str], list[str], float]:
    """Match one word of a side against two words of the other, run together ("TLIGHT", "SPACE BOY")."""
    cost = 0.0
    for short, long in ((query, product), (product, query)):
        for w in list(short):
            pair = _pair_for(w, long) if len(long) >= 2 else None
            if pair is not None:
                short.remove(w)
                for index in sorted(pair, reverse=True):
                    del long[index]
                cost += COST_JOINED
    return query, product, cost


def _best(query: list[str], product: list[str], vocab: Collection[str],
          learned: Mapping[str, Collection[str]]) -> float | None:
    """Cheapest one-to-one pairing of the words left (both sides the same length, at most MAX_LEFT)."""
    if not query:
        return 0.0
    q, rest = query[0], query[1:]
    best: float | None = None
    for i, p in enumerate(product):
        cost = word_cost(q, p, vocab, learned)
        if cost is None:
            continue
        tail = _best(rest, product[:i] + product[i + 1:], vocab, learned)
        if tail is not None and (best is None or cost + tail < best):
            best = cost + tail
    return best


def align(query: list[str], product: list[str], vocab: Collection[str],
          learned: Mapping[str, Collection[str]]) -> float | None:
    """The cost of reading every word of ``query`` as every word of ``product``, or None if they differ."""
    q_left, p_left = _take_common(query, product)
    if not q_left and not p_left:
        return 0.0
    q_left, p_left, cost = _joins(q_left, p_left)
    if len(q_left) != len(p_left) or len(q_left) > MAX_LEFT:
        return None
    rest = _best(q_left, p_left, vocab, learned)
    return None if rest is None else cost + rest


def learn_pair(query: list[str], product: list[str], vocab: Collection[str]) -> tuple[str, str] | None:
    """The one unknown receipt word and the catalogue word it stands for, when a name confirmed by SKU
    differs from its product's name in exactly that word (``xmas`` -> ``christmas``)."""
    q_left, p_left = _take_common(query, product)
    if len(q_left) != 1 or len(p_left) != 1:
        return None
    q, p = q_left[0], p_left[0]
    if q in vocab or _DIGIT.search(q + p) or len(q) < 2 or typo(q, p) or abbreviation_cost(q, p) is not None:
        return None  # known words, numbers and what the rules already read are not learned
    return q, p
