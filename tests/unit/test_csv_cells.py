"""CSV formula injection: every CSV writer of Scout goes through scout.csv_cells, which quotes text that a
spreadsheet would run and leaves numbers as numbers."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest

from scout.csv_cells import csv_writer, safe_cell

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["scout", "ingest_api", "streams", "jobs", "quality", "simulator", "observability", "sql"]


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1+1", "'+1+1"), ("-1+1", "'-1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("-", "'-"), ("-1e5", "'-1e5"),
    ("-3", "-3"), ("+1.50", "+1.50"), ("plain", "plain"), (" =1", " =1"), ("", ""),
    (-3, -3), (Decimal("-12.50"), Decimal("-12.50")), (-0.5, -0.5), (None, None),
])
def test_safe_cell(value: object, cell: object) -> None:
    assert safe_cell(value) == cell


def test_the_writer_quotes_every_cell_it_writes() -> None:
    out = io.StringIO()
    csv_writer(out, lineterminator="\n").writerows([["=a", -3, "-3"], ["@b", "ok", Decimal("-1.00")]])
    assert out.getvalue() == "'=a,-3,-3\n'@b,ok,-1.00\n"


def test_no_module_writes_csv_without_the_shared_writer() -> None:
    writers = re.compile(r"csv\.writer\(|csv\.DictWriter\(|\bDictWriter\(")
    found = [f"{path.relative_to(ROOT)}" for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
             if path.name != "csv_cells.py" and writers.search(path.read_text(encoding="utf-8"))]
    assert found == []
