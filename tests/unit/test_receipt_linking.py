"""Receipt reading in product linking: unicode punctuation, words run together or split, dropped vowels,
abbreviations (rules and learned from names confirmed by SKU), and the siblings that must never merge."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streams.silver.linking import Catalogue, normalise_name
from streams.silver.wordmatch import abbreviation_cost, align, skeleton

PRODUCTS = [(1, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER"), (2, "85123B", "RED HANGING HEART T-LIGHT HOLDER"),
            (3, "22086", "PAPER CHAIN KIT 50'S CHRISTMAS"), (4, "21733", "BLACK GLASS CANDLE HOLDER"),
            (5, "21734", "BLANK GLASS CANDLE HOLDER"), (6, "84029G", "KNITTED UNION FLAG HOT WATER BOTTLE"),
            (7, "22112", "CHOCOLATE HOT WATER BOTTLE"), (8, "22111", "SCOTTIE DOG HOT WATER BOTTLE"),
            (9, "84880", "WHITE WIRE EGG HOLDER"), (10, "22910", "CHRISTMAS TREE DECORATION"),
            (11, "22911", "SET OF 6 CHRISTMAS BAUBLES"), (12, "22912", "SET OF 4 CHRISTMAS BAUBLES")]


@pytest.mark.parametrize(("raw", "norm"), [
    ("WHITE HANGING HEART T\u2013LIGHT HOLDER", "white hanging heart t light holder"),
    ("PAPER CHAIN KIT 50\u2019S CHRISTMAS", "paper chain kit 50 s christmas"),
    ("SET OF \uff16 CHRISTMAS BAUBLES", "set of 6 christmas baubles"),
    ("\u201cKNITTED\u201d UNION FLAG HOT WATER BOTTLE", "knitted union flag hot water bottle"),
    ("CAF\u00c9 CR\u00c8ME", "cafe creme"),
    ("WHITE HANGING HEART T-LIGHT HOLDER", "white hanging heart t light holder"),  # ASCII: as before
])
def test_unicode_punctuation_folds_to_its_ascii_reading(raw: str, norm: str) -> None:
    assert normalise_name(raw) == norm


@pytest.mark.parametrize(("name", "key"), [
    ("WHITE HANGING HEART TLIGHT HOLDER", 1),  # two words run together
    ("RED HANGINGHEART T-LIGHT HLDR", 2),  # run together and vowels dropped
    ("WHT HANGING HEART T-LIGHT HLDR", 1),  # consonant skeletons
    ("BLCK GLASS CANDLE HOLDER", 4),  # BLACK, not BLANK: the C is BLACK's alone
    ("KNITTED UNION FLAG HOT WATER BTTL", 6),
    ("CHOC HOT WATER BOTTLE", 7),  # a prefix
    ("WHITE WIRE EGG HLDR", 9),
])
def test_receipt_names_link_to_their_product(name: str, key: int) -> None:
    match = Catalogue(PRODUCTS).match(name)
    assert match is not None and (match.product_key, match.method) == (key, "fuzzy")
    assert 0.5 <= match.confidence < 0.99


@pytest.mark.parametrize("name", [
    "BLUE HANGING HEART T-LIGHT HLDR",  # another colour, abbreviated elsewhere
    "WHITE HANGING HEART TLIGHT",  # a word missing
    "SET OF 8 XMAS BAUBLES",  # another number
    "BLK GLASS CANDLE HOLDER",  # BLACK or BLANK: refused, not guessed
    "SCOTTIE CAT HOT WATER BOTTLE",
    "damaged", "?", "HLDR",
])
def test_siblings_ambiguity_and_notes_link_to_nothing(name: str) -> None:
    catalogue = Catalogue(PRODUCTS)
    for _ in range(2):
        catalogue.learn("SET OF 6 XMAS BAUBLES", 11)
        catalogue.learn("XMAS TREE DECORATION", 10)
    assert catalogue.match(name) is None


def test_a_name_with_unicode_dashes_is_the_catalogue_name() -> None:
    match = Catalogue(PRODUCTS).match("WHITE HANGING HEART T\u2014LIGHT HOLDER")
    assert match is not None and (match.product_key, match.method, match.confidence) == (1, "name", Decimal("0.99"))


def test_a_receipt_word_is_learned_from_names_confirmed_by_sku_not_typed_in() -> None:
    catalogue = Catalogue(PRODUCTS)
    assert catalogue.match("PAPER CHAIN KIT 50'S XMAS") is None  # no rule reads XMAS as CHRISTMAS
    assert catalogue.learn("XMAS TREE DECORATION", 10)
    assert catalogue.match("PAPER CHAIN KIT 50'S XMAS") is None  # one product is not enough
    assert catalogue.learn("SET OF 6 XMAS BAUBLES", 11)
    match = catalogue.match("PAPER CHAIN KIT 50'S XMAS")
    assert match is not None and match.product_key == 3
    assert catalogue.learned["xmas"] == {"christmas"}
    assert not catalogue.learn("SET OF 4 XMAS BAUBLES", 99)  # an unknown product teaches nothing


def test_word_rules() -> None:
    assert [skeleton(w) for w in ("glass", "holder", "white", "christmas")] == ["gls", "hldr", "wht", "chrstms"]
    assert abbreviation_cost("blk", "black") is not None and abbreviation_cost("blk", "blank") is not None
    assert abbreviation_cost("12", "120") is None and abbreviation_cost("b", "black") is None
    vocab = {"blue", "black", "heart"}
    assert align(["blue", "heart"], ["black", "heart"], vocab, {}) is None
    assert align(["b", "heart"], ["black", "heart"], vocab, {}) is None  # too short to read
    assert align(["hearts", "blck"], ["black", "heart"], vocab, {}) == pytest.approx(0.05)
