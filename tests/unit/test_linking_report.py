"""Linking quality on the labelled set built from the Online Retail II sample (tests/data/).

Precision = correct links / links made (links on notes, colour variants and unknown products are wrong);
coverage = names with a true product that got linked / names with a true product.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from streams.silver.linking import Catalogue

DATA = Path(__file__).resolve().parents[1] / "data"


def test_precision_and_coverage_on_labelled_variants() -> None:
    with open(DATA / "linking_catalogue.csv", newline="", encoding="utf-8") as fh:
        products = list(csv.DictReader(fh))
    with open(DATA / "linking_labelled.csv", newline="", encoding="utf-8") as fh:
        labelled = list(csv.DictReader(fh))
    sku_by_key = {n: p["sku"] for n, p in enumerate(products, start=1)}
    catalogue = Catalogue((n, p["sku"], p["name"]) for n, p in enumerate(products, start=1))
    links = correct = positives = covered = 0
    by_kind: Counter[str] = Counter()
    wrong_by_kind: Counter[str] = Counter()
    for row in labelled:
        match = catalogue.match(row["name"])
        expected = row["expected_sku"] or None
        positives += expected is not None
        by_kind[row["kind"]] += 1
        if match is None:
            continue
        links += 1
        if sku_by_key[match.product_key] == expected:
            correct += 1
            covered += 1
        else:
            wrong_by_kind[row["kind"]] += 1
            covered += expected is not None
    precision, coverage = correct / links, covered / positives
    print(f"\nlinking report: {len(products)} products, {len(labelled)} labelled names {dict(by_kind)}\n"
          f"  links {links}, correct {correct}, wrong {dict(wrong_by_kind)}\n"
          f"  precision {precision:.4f}  coverage {coverage:.4f}")
    assert precision >= 0.99
    assert coverage >= 0.95
    assert wrong_by_kind["note"] == wrong_by_kind["variant"] == 0


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
