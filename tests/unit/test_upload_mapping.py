"""Unit tests of the invoice-CSV mapper: grouping, the documented row rules, malformed files."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from scout.invoice_mapping import Group, Mapping, UploadFormatError, map_csv

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
RETAIL = Mapping.preset("online_retail_ii")


def groups(body: str, mapping: Mapping = RETAIL, window: int = 16) -> list[Group]:
    return list(map_csv(io.StringIO(HEADER + body, newline=""), mapping, window=window))


def reasons(gs: list[Group]) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.reason) for g in gs for e in g.errors]


def test_one_transaction_per_invoice_with_local_uk_time_and_decimal_total() -> None:
    gs = groups(
        "489434,85048,GLASS BALL,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
        "489434,79323P,PINK LIGHTS,2,2009-12-01 07:45:00,0.10,13085.0,United Kingdom\n"
        "489435,22041,FRAME,1,2010-07-01 10:00:00,2.1,,France\n"
    )
    assert [g.invoice for g in gs] == ["489434", "489435"]
    first, second = (g.transaction for g in gs)
    assert first is not None and second is not None
    assert first.total_amount == Decimal("83.60") and first.store_id == "United Kingdom"
    assert first.ts == datetime(2009, 12, 1, 7, 45, tzinfo=UTC)  # GMT in winter
    assert second.ts == datetime(2010, 7, 1, 9, 0, tzinfo=UTC)  # BST in summer: missing customer accepted
    assert second.currency == "GBP" and second.items[0].product_id == "22041"
    assert first.items[1].unit_price == Decimal("0.10") and first.items[1].line_amount == Decimal("0.20")


def test_cancellations_non_product_codes_and_bad_values_are_rejected_with_row_and_column() -> None:
    gs = groups(
        "C489449,22087,PAPER BUNTING,-12,2009-12-01 10:33:00,2.95,16321.0,Australia\n"
        "489450,POST,POSTAGE,1,2009-12-01 10:34:00,18.00,12533.0,Germany\n"
        "489450,TEST001,TEST,1,2009-12-01 10:34:00,1.00,12533.0,Germany\n"
        "489450,22088,BUNTING,0,2009-12-01 10:34:00,2.95,12533.0,Germany\n"
        "489450,22089,BUNTING,1,2009-12-01 10:34:00,0,12533.0,Germany\n"
        "489450,22090,BUNTING,1,2009-12-01 10:34:00,0.001,12533.0,Germany\n"
        "489450,22091,BUNTING,x,2009-12-01 10:34:00,1,12533.0,Germany\n"
        "489450,22092,BUNTING,1,01/12/2009,1,12533.0,Germany\n"
        "489450,22093,BUNTING,1,2009-12-01 10:34:00,1\n"
        "489450,22094,BUNTING,1,2009-12-01 10:34:00,1.5,12533.0,Germany\n"
    )
    assert reasons(gs) == [
        (2, "Invoice", "cancellation"), (3, "StockCode", "non_product_code"), (4, "StockCode", "non_product_code"),
        (5, "Quantity", "non_positive_quantity"), (6, "Price", "non_positive_price"),
        (7, "Price", "more_than_2_decimal_places"), (8, "Quantity", "not_an_integer"),
        (9, "InvoiceDate", "bad_date"), (10, "*", "wrong_field_count"),
    ]
    assert gs[0].transaction is None and gs[1].transaction is not None
    assert gs[1].transaction.total_amount == Decimal("1.50") and gs[1].rows == 9


def test_exact_duplicate_lines_are_dropped_and_counted() -> None:
    line = "489434,85048,GLASS BALL,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
    (g,) = groups(line + line)
    assert g.transaction is not None and g.accepted == 1 and g.rows == 2
    assert [(d.row, d.reason) for d in g.duplicates] == [(3, "duplicate_line")]


def test_interleaved_invoices_group_within_the_window_and_are_rejected_after_it() -> None:
    a = "1,85048,A,1,2009-12-01 07:45:00,1,,UK\n"
    a2 = "1,85049,B,1,2009-12-01 07:45:00,1,,UK\n"
    b = "2,85048,A,1,2009-12-01 07:45:00,1,,UK\n"
    gs = groups(a + b + a2)
    assert reasons(gs) == [] and {g.invoice: g.accepted for g in gs} == {"1": 2, "2": 1}
    gs = groups(a + b + a2, window=1)
    assert reasons(gs) == [(4, "Invoice", "invoice_not_contiguous")]


def test_blank_lines_are_skipped_and_row_numbers_are_file_lines() -> None:
    gs = groups("\n1,85048,A,1,2009-12-01 07:45:00,1,,UK\n\n1,85049,B,0,2009-12-01 07:45:00,1,,UK\n")
    assert reasons(gs) == [(5, "Quantity", "non_positive_quantity")]


def test_missing_columns_bad_quoting_and_wrong_encoding_are_clear_errors() -> None:
    with pytest.raises(UploadFormatError, match="missing columns: Price"):
        list(map_csv(io.StringIO("Invoice,StockCode,Quantity,InvoiceDate,Country\n"), RETAIL))
    with pytest.raises(UploadFormatError, match="line 2: malformed CSV"):
        groups('1,85048,"A"x,1,2009-12-01 07:45:00,1,,UK\n')
    raw = io.TextIOWrapper(io.BytesIO((HEADER + "1,85048,CAF\xc9,1,2009-12-01 07:45:00,1,,UK\n").encode("latin-1")),
                           encoding="utf-8", newline="")
    with pytest.raises(UploadFormatError, match="not UTF-8"):
        list(map_csv(raw, RETAIL))
    with pytest.raises(UploadFormatError, match="empty file"):
        list(map_csv(io.StringIO(""), RETAIL))


def test_mapping_file_with_a_fixed_store() -> None:
    mapping = Mapping.from_dict({"columns": {"invoice": "Invoice", "stock_code": "StockCode", "quantity": "Quantity",
                                             "invoice_date": "InvoiceDate", "price": "Price"},
                                 "store_id": "WEB", "currency": "EUR"})
    (g,) = groups("1,85048,A,1,2009-12-01 07:45:00,1,,UK\n", mapping)
    assert g.transaction is not None and g.transaction.store_id == "WEB" and g.transaction.currency == "EUR"
    with pytest.raises(UploadFormatError, match="lacks"):
        Mapping.from_dict({"columns": {"invoice": "Invoice"}})
    with pytest.raises(UploadFormatError, match="unknown mapping preset"):
        Mapping.preset("nope")


def test_a_date_outside_the_plausible_range_rejects_its_row() -> None:
    plausible = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
    body = ("1,85048,X,1,0002-01-01 10:00:00,1.00,,France\n"
            "1,85049,X,1,2009-12-01 10:00:00,1.00,,France\n"
            "2,85048,X,1,2031-01-01 10:00:00,1.00,,France\n")
    gs = list(map_csv(io.StringIO(HEADER + body, newline=""), RETAIL, ts_range=plausible))
    assert reasons(gs) == [(2, "InvoiceDate", "implausible_date"), (4, "InvoiceDate", "implausible_date")]
    assert [item.product_id for g in gs if g.transaction for item in g.transaction.items] == ["85049"]


def test_a_cell_longer_than_its_field_rejects_only_its_row() -> None:
    gs = groups("1,85048,ok,1,2009-12-01 10:00:00,1.00,,France\n"
                f"1,85049,{'d' * 201},1,2009-12-01 10:00:00,1.00,,France\n"
                f"1,{'s' * 65},ok,1,2009-12-01 10:00:00,1.00,,France\n"
                f"1,85050,ok,1,2009-12-01 10:00:00,1.00,{'c' * 1001},France\n"
                f"1,85051,{'d' * 200},1,2009-12-01 10:00:00,1.00,,France\n")
    assert reasons(gs) == [(3, "Description", "too_long"), (4, "StockCode", "too_long"),
                           (5, "Customer ID", "too_long")]
    (invoice,) = [g.transaction for g in gs if g.transaction is not None]
    assert [item.product_id for item in invoice.items] == ["85048", "85051"]
