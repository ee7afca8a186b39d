"""Product linking, shared by the silver step and the re-link job: exact SKU, then exact normalised
name; fuzzy matching comes with the streams issue.

Example::

    normalise_name("  Coca-Cola  350ML ")   # -> "coca cola 350ml"
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Literal

LinkMethod = Literal["sku", "name", "fuzzy", "unlinked"]

CONFIDENCE: dict[LinkMethod, Decimal] = {
    "sku": Decimal("1.000"),
    "name": Decimal("0.990"),
    "unlinked": Decimal("0.000"),
}

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = text.replace("&", " and ")
    return _NON_WORD.sub(" ", text).strip()
