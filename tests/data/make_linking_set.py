"""Build the labelled product-linking set from the Online Retail II sample (run once; output committed).

    python tests/data/make_linking_set.py tests/data/online_retail_ii_sample/online_retail_II_sample.csv.gz

Writes tests/data/linking_catalogue.csv (sku,name) and tests/data/linking_labelled.csv
(name,expected_sku,kind,split):
- kind=alias: another description the sample uses for the same StockCode (expected: that product)
- kind=typo: a catalogue name with one generated edit, a swapped word order, or noisy spacing/case
- kind=variant: another colour/pattern under the same StockCode: must link to nothing
- kind=note: a description that is a note ("damaged", "?", "21733 mixed"): must link to nothing
- kind=unknown: a held-out product's name (often a colour or size sibling of a catalogue product):
  must link to nothing
- kind=unicode: a catalogue name with unicode dashes, quotes, apostrophes or full-width digits
- kind=runon: a catalogue name with two neighbouring words run together ("TLIGHT HOLDER")
- kind=vowels: a catalogue name with the vowels dropped from one word ("HLDR")
- kind=abbrev: a catalogue name with one or two words abbreviated as receipts print them: consonant
  skeletons (WHT, GLS, HLDR), shortened skeletons (BLK), prefixes (DECO) and the receipt words no rule
  derives (XMAS)
- kind=sibling: a catalogue name with its colour, size or number changed to one no catalogue product has
  (sometimes also abbreviated or run together): must link to nothing

split=tune rows may be used to tune and to learn from (abbreviations confirmed by SKU); split=test rows,
chosen by product with their own seed, are the held-out set the report judges.
"""

from __future__ import annotations

import csv
import gzip
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

PRODUCT_CODE = re.compile(r"^\d{5}[A-Za-z]{0,2}$")
HERE = Path(__file__).parent


def _norm(name: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.lower().replace("&", " and ")).split())


def _same(name: str) -> str:
    """The name's words in order, plurals and spacing aside: what one product may be printed as."""
    return "".join(w[:-1] if len(w) >= 4 and w.endswith("s") else w for w in _norm(name).split())


COLOURS = {"red", "pink", "blue", "ivory", "green", "white", "black", "yellow", "purple", "orange", "gold",
           "silver", "cream", "grey", "brown", "woodland", "fruits"}


def _is_note(description: str) -> bool:
    letters = [c for c in description if c.isalpha()]
    return (len(letters) < 3 or any(c.islower() for c in letters) or "?" in description
            or len(description.split()) < 2)


def _is_variant(description: str, canonical: str) -> bool:
    """Same StockCode, another colour or pattern: a different product that must not be merged."""
    a, b = set(_norm(description).split()), set(_norm(canonical).split())
    return bool((a ^ b) & COLOURS)


def _typo(rng: random.Random, name: str) -> str | None:
    words = name.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    kind = rng.choice(["edit", "edit", "edit", "swap", "noise"])
    if kind == "swap" and len(words) >= 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)
    if kind == "noise":
        return "  " + "  ".join(w.lower() if rng.random() < 0.5 else w for w in words) + " "
    if not long_words:
        return None
    i = rng.choice(long_words)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    op = rng.choice(["delete", "substitute", "transpose", "insert"])
    letter = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if op == "delete":
        w = w[:j] + w[j + 1:]
    elif op == "substitute":
        w = w[:j] + letter + w[j + 1:]
    elif op == "transpose":
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    else:
        w = w[:j] + letter + w[j:]
    words[i] = w
    return " ".join(words)


SIZES = ["small", "large", "medium", "mini", "jumbo", "big", "giant"]
DASHES, APOSTROPHES, QUOTES = "\u2013\u2014\u2010\u2212", "\u2019\u2018\u02bc", ("\u201c", "\u201d")
FULL_WIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
RECEIPT_WORDS = {"christmas": "XMAS", "assorted": "ASSTD", "large": "LGE", "small": "SML", "medium": "MED",
                 "pack": "PK"}  # what POS receipts print that no letter rule derives from the word


def _skeleton(word: str) -> str:
    out = word[:1]
    for ch in word[1:]:
        if ch.upper() not in "AEIOU" and ch != out[-1]:
            out += ch
    return out


def _pick(rng: random.Random, words: list[str], ok: object) -> int | None:
    choices = [i for i, w in enumerate(words) if ok(w)]  # type: ignore[operator]
    return rng.choice(choices) if choices else None


def _unicode(rng: random.Random, name: str) -> str | None:
    if "-" in name:
        return name.replace("-", rng.choice(DASHES))
    if "'" in name:
        return name.replace("'", rng.choice(APOSTROPHES))
    if any(c.isdigit() for c in name) and rng.random() < 0.5:
        return "".join(FULL_WIDTH.get(c, c) for c in name)
    words = name.split()
    if len(words) < 2:
        return None
    i = rng.randrange(len(words) - 1)
    if rng.random() < 0.5:
        return " ".join(words[:i]) + (" " if i else "") + words[i] + rng.choice(DASHES) + " ".join(words[i + 1:])
    words[i] = QUOTES[0] + words[i] + QUOTES[1]
    return " ".join(words)


def _runon(rng: random.Random, name: str) -> str | None:
    words = name.split()
    pairs = [i for i in range(len(words) - 1) if words[i].isalpha() and words[i + 1].isalpha()]
    if not pairs:
        return None
    i = rng.choice(pairs)
    return " ".join([*words[:i], words[i] + words[i + 1], *words[i + 2:]])


def _vowels(rng: random.Random, name: str) -> str | None:
    words = name.split()
    i = _pick(rng, words, lambda w: w.isalpha() and len(w) >= 5 and sum(c in "AEIOU" for c in w[1:]) >= 2)
    if i is None:
        return None
    words[i] = words[i][0] + "".join(c for c in words[i][1:] if c not in "AEIOU")
    return " ".join(words)


def _abbreviate(rng: random.Random, word: str) -> str:
    if word.lower() in RECEIPT_WORDS:
        return RECEIPT_WORDS[word.lower()]
    skeleton = _skeleton(word)
    style = rng.choice(["skeleton", "skeleton", "short", "prefix"])
    if style == "short" and len(skeleton) == 4:
        return skeleton[:2] + skeleton[3]  # BLACK -> BLCK -> BLK
    if style == "prefix" and len(word) >= 7:
        return word[:4]
    return skeleton if len(skeleton) >= 3 and skeleton != word else word[:4]


def _abbrev(rng: random.Random, name: str) -> str | None:
    words = name.split()
    ok = [i for i, w in enumerate(words) if w.isalpha() and (len(w) >= 5 or w.lower() in RECEIPT_WORDS)]
    if not ok:
        return None
    known = [i for i in ok if words[i].lower() in RECEIPT_WORDS]
    picked = set(rng.sample(ok, k=min(len(ok), rng.choice([1, 1, 2]))))
    if known and rng.random() < 0.7:
        picked.add(rng.choice(known))
    for i in picked:
        words[i] = _abbreviate(rng, words[i])
    return " ".join(words)


def _bag(name: str) -> str:
    """The name's words in any order, plurals aside (the linker reads words in any order)."""
    return " ".join(sorted(w[:-1] if len(w) >= 4 and w.endswith("s") else w for w in _norm(name).split()))


def _sibling(rng: random.Random, name: str, taken: set[str]) -> str | None:
    words = name.split()
    for i in rng.sample(range(len(words)), k=len(words)):
        low = words[i].lower()
        group = (sorted(COLOURS - {"woodland", "fruits"}) if low in COLOURS else SIZES if low in SIZES
                 else [str(n) for n in (1, 2, 3, 4, 6, 8, 10, 12, 20, 24, 36, 48)] if low.isdigit() else None)
        if group is None:
            continue
        for other in rng.sample(group, k=len(group)):
            changed = [*words[:i], other.upper(), *words[i + 1:]]
            if other != low and not {_same(" ".join(changed)), _bag(" ".join(changed))} & taken:
                return " ".join(changed)
    return None


def _receipt_kinds(rng: random.Random, catalogue: dict[str, str], codes: list[str],
                   taken: set[str]) -> list[tuple[str, str, str]]:
    """The receipt variations of catalogue names (unicode, runon, vowels, abbrev) and their siblings."""
    rows: list[tuple[str, str, str]] = []
    makers = {"unicode": _unicode, "runon": _runon, "vowels": _vowels, "abbrev": _abbrev}
    for kind, make in makers.items():
        for code in rng.sample(codes, k=len(codes)):
            if sum(k == kind for _, _, k in rows) >= PER_KIND:
                break
            name = make(rng, catalogue[code])
            norm = _norm(name or "")
            fresh = kind == "unicode" or (norm != _norm(catalogue[code]) and norm not in taken)
            if name and name != catalogue[code] and fresh:
                rows.append((name, code, kind))
    siblings = 0
    for code in rng.sample(codes, k=len(codes)):
        name = _sibling(rng, catalogue[code], taken)
        if name is None or siblings >= PER_KIND:
            continue
        if rng.random() < 0.5:  # a sibling as a receipt prints it: still another product
            printed = rng.choice([_abbrev, _runon, _vowels])(rng, name)
            name = printed if printed and _sibling_kept(name, printed) else name
        rows.append((name, "", "sibling"))
        siblings += 1
    return rows


def _sibling_kept(name: str, printed: str) -> bool:
    """The printed form still shows the changed colour, size or number as a whole word."""
    marks = set(_norm(name).split()) & (COLOURS | set(SIZES) | {w for w in _norm(name).split() if w.isdigit()})
    return marks <= set(_norm(printed).split())


PER_KIND = 800
SPLIT_SEED = 20240502
TEST_SHARE = 0.3


def main(sample: Path) -> None:
    descriptions: dict[str, Counter[str]] = defaultdict(Counter)
    with gzip.open(sample, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if PRODUCT_CODE.match(row["StockCode"]) and row["Description"].strip():
                descriptions[row["StockCode"].upper()][row["Description"]] += 1
    rng = random.Random(20240501)
    codes = sorted(descriptions)
    held_out = set(rng.sample(codes, k=len(codes) // 10))
    catalogue = {}
    for code in codes:
        names = [d for d, _ in descriptions[code].most_common() if not _is_note(d)]
        if names:
            catalogue[code] = names[0]
    labelled: list[tuple[str, str, str]] = []
    kept = [c for c in codes if c in catalogue and c not in held_out]
    codes_by_name: dict[str, set[str]] = defaultdict(set)
    for code in kept:
        codes_by_name[_norm(catalogue[code])].add(code)
    for code in codes:
        for description in descriptions[code]:
            if _is_note(description):
                labelled.append((description, "", "note"))
            elif code in held_out:
                if _norm(description) not in codes_by_name:  # same name under another code: ambiguous
                    labelled.append((description, "", "unknown"))
            elif description != catalogue.get(code) and codes_by_name[_norm(catalogue[code])] == {code}:
                if _is_variant(description, catalogue[code]):
                    labelled.append((description, "", "variant"))
                else:
                    labelled.append((description, code, "alias"))
    unambiguous = [c for c in kept if codes_by_name[_norm(catalogue[c])] == {c}]
    for code in rng.sample(unambiguous, k=min(1500, len(unambiguous))):
        typo = _typo(rng, catalogue[code])
        if typo and typo != catalogue[code]:
            labelled.append((typo, code, "typo"))
    taken = ({_norm(catalogue[c]) for c in kept} | {_norm(d) for c in held_out for d in descriptions[c]}
             | {_same(catalogue[c]) for c in kept} | {_bag(catalogue[c]) for c in kept})
    split_rng = random.Random(SPLIT_SEED)
    labelled += _receipt_kinds(split_rng, catalogue, unambiguous, taken)
    test_codes = set(split_rng.sample(kept, k=int(len(kept) * TEST_SHARE)))
    rows = [(name, sku, kind, "test" if (sku in test_codes if sku else split_rng.random() < TEST_SHARE) else "tune")
            for name, sku, kind in labelled]
    with open(HERE / "linking_catalogue.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "name"])
        writer.writerows((c, catalogue[c]) for c in kept)
    with open(HERE / "linking_labelled.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "expected_sku", "kind", "split"])
        writer.writerows(rows)
    counts = Counter((kind, split) for _, _, kind, split in rows)
    sys.stdout.write(f"catalogue {len(kept)} products; labelled {len(labelled)}: {dict(counts)}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
