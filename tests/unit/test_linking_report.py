"""Linking quality on the labelled set built from the Online Retail II sample (tests/data/).

Precision = correct links / links made (links on notes, colour variants, siblings and unknown products are
wrong); coverage = names with a true product that got linked / names with a true product. The catalogue
learns receipt words from the tune split's names (confirmed by their SKU); the report judges the test split,
which nothing was tuned on.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from streams.silver.linking import Catalogue

DATA = Path(__file__).resolve().parents[1] / "data"
POSITIVE_KINDS = ("alias", "typo", "unicode", "runon", "vowels", "abbrev")
RECEIPT_KINDS = ("unicode", "runon", "vowels", "abbrev")
NEGATIVE_KINDS = ("note", "variant", "sibling", "unknown")


def _load() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with open(DATA / "linking_catalogue.csv", newline="", encoding="utf-8") as fh:
        products = list(csv.DictReader(fh))
    with open(DATA / "linking_labelled.csv", newline="", encoding="utf-8") as fh:
        labelled = list(csv.DictReader(fh))
    return products, labelled


def _report(split: str) -> dict[str, Counter[str]]:
    """Per kind: names, positives, links, correct, covered, wrong; learned from the tune split only."""
    products, labelled = _load()
    sku_by_key = {n: p["sku"] for n, p in enumerate(products, start=1)}
    key_by_sku = {sku: key for key, sku in sku_by_key.items()}
    catalogue = Catalogue((n, p["sku"], p["name"]) for n, p in enumerate(products, start=1))
    for row in labelled:
        if row["split"] == "tune" and row["expected_sku"]:
            catalogue.learn(row["name"], key_by_sku[row["expected_sku"]])
    stats: dict[str, Counter[str]] = {}
    for row in labelled:
        if row["split"] != split:
            continue
        for kind in (row["kind"], "all"):
            s = stats.setdefault(kind, Counter())
            expected = row["expected_sku"] or None
            match = catalogue.match(row["name"])
            s["names"] += 1
            s["positives"] += expected is not None
            if match is None:
                continue
            right = sku_by_key[match.product_key] == expected
            s["links"] += 1
            s["correct"] += right
            s["covered"] += expected is not None
            s["wrong"] += not right
    return stats


def _print(split: str, stats: dict[str, Counter[str]]) -> None:
    lines = [f"\nlinking report ({split} split): kind, names, links, wrong, precision, coverage"]
    for kind, s in sorted(stats.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        precision = f"{s['correct'] / s['links']:.4f}" if s["links"] else "-"
        coverage = f"{s['covered'] / s['positives']:.4f}" if s["positives"] else "-"
        lines.append(f"  {kind:<8} {s['names']:>5} {s['links']:>5} {s['wrong']:>3}  {precision:>7}  {coverage:>7}")
    print("\n".join(lines))


@pytest.fixture(scope="module")
def held_out() -> dict[str, Counter[str]]:
    _print("tune", _report("tune"))
    stats = _report("test")
    _print("test", stats)
    return stats


def test_precision_and_coverage_on_the_held_out_split(held_out: dict[str, Counter[str]]) -> None:
    total = held_out["all"]
    assert total["correct"] / total["links"] >= 0.99
    assert total["covered"] / total["positives"] >= 0.95
    for kind in POSITIVE_KINDS:
        s = held_out[kind]
        assert s["correct"] / s["links"] >= 0.99, kind
    for kind in RECEIPT_KINDS:
        s = held_out[kind]
        assert s["names"] >= 150 and s["covered"] / s["positives"] >= 0.85, kind


def test_no_false_links_on_siblings_and_notes(held_out: dict[str, Counter[str]]) -> None:
    assert held_out["sibling"]["names"] >= 150
    assert {kind: held_out[kind]["links"] for kind in NEGATIVE_KINDS if kind in held_out} == dict.fromkeys(
        [kind for kind in NEGATIVE_KINDS if kind in held_out], 0)


def test_the_samples_known_traps() -> None:
    catalogue = Catalogue([(1, "21629", "SQUARE FLOOR CUSHION VINTAGE RED"),
                           (2, "21955", "UNION JACK GUNS & ROSES  DOORMAT"),
                           (3, "21450", "DISTRESSED CANDLE STICK WHITE")])
    assert catalogue.match("SQUARE FLOOR CUSHION VINTAGE PINK") is None
    assert catalogue.match("damaged") is None
    assert catalogue.match("?") is None
    hit = catalogue.match("  DOORMAT UNION JACK GUNS AND ROSES")
    assert hit is not None and (hit.product_key, hit.method) == (2, "fuzzy")
    typo = catalogue.match("DISTRESED CANDLE STICK WHITE")
    assert typo is not None and typo.product_key == 3 and 0.8 <= typo.confidence < 1
