"""Every CSV file Scout writes goes through here, so no cell opens as a formula in a spreadsheet.

Example::

    writer = csv_writer(out, lineterminator="\\n")
    writer.writerow(["=1+1", "-3", -3, "@SUM(A1)"])   # '=1+1,-3,-3,'@SUM(A1)

CSV formula injection (OWASP): a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return may be run as a formula by the spreadsheet that opens the file (``=cmd|' /C calc'!A0``). Such a
text cell gets a leading single quote, which spreadsheets show as text. The choice for numbers: numeric
values (int, Decimal, float) are values, never formulas, and are written as they are, so a quantity of -3
stays the number -3; so is a string that is exactly a plain decimal number (``"-3"``, ``"+1.50"``: the
rejected value of an upload row), which a spreadsheet can only read as that number.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Final, Protocol

FORMULA_STARTS: Final = frozenset("=+-@\t\r")
_PLAIN_NUMBER: Final = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet runs: a text that could start a formula gets a quote."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose every cell goes through ``safe_cell``."""

    def __init__(self, out: _Writable, **fmtparams: Any) -> None:
        self._writer = csv.writer(out, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: _Writable, **fmtparams: Any) -> SafeWriter:
    """The writer for every CSV Scout produces (same parameters as ``csv.writer``)."""
    return SafeWriter(out, **fmtparams)
