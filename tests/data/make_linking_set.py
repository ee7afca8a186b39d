"""Build the labelled product-linking set from the Online Retail II sample (run once; output committed).

    python tests/data/make_linking_set.py tests/data/online_retail_ii_sample/online_retail_II_sample.csv.gz

Writes tests/data/linking_catalogue.csv (sku,name) and tests/data/linking_labelled.csv (name,expected_sku,kind):
- kind=alias: another description the sample uses for the same StockCode (expected: that product)
- kind=typo: a catalogue name with one generated edit, a swapped word order, or noisy spacing/case
- kind=variant: another colour/pattern under the same StockCode: must link to nothing
- kind=note: a description that is a note ("damaged", "?", "21733 mixed"): must link to nothing
- kind=unknown: a held-out product's name (often a colour or size sibling of a catalogue product):
  must link to nothing
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
    with open(HERE / "linking_catalogue.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "name"])
        writer.writerows((c, catalogue[c]) for c in kept)
    with open(HERE / "linking_labelled.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "expected_sku", "kind"])
        writer.writerows(labelled)
    counts = Counter(kind for _, _, kind in labelled)
    sys.stdout.write(f"catalogue {len(kept)} products; labelled {len(labelled)}: {dict(counts)}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
