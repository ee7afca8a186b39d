"""Stream invoice-line CSV into transactions, one per invoice, with per-row errors (row, column, reason).

Example::

    mapping = Mapping.preset("online_retail_ii")
    for group in map_csv(text_stream, mapping):      # memory: one invoice at a time
        group.transaction, group.errors, group.duplicates

Rules (documented in README, "Bulk upload"):

- one transaction per invoice; an invoice's lines may interleave with those of the 16 most recent other
  invoices; a line of an invoice already closed is rejected (``invoice_not_contiguous``);
- an invoice of more than 500 distinct lines (the contract's limit) is rejected (``too_many_lines``);
- ``store_id`` is the Country column (an online retailer sells per country) or a fixed value;
- ``ts`` is the local invoice time in the mapping's time zone (Europe/London), converted to UTC; a date
  outside the plausible range (``Settings.ts_range``) is rejected (``implausible_date``);
- cancellations (invoice starting with ``C``) are rejected: returns are explicit, never negative sales;
- non-product codes (postage, fees, adjustments, manual lines, tests, gift vouchers) are rejected;
- quantity <= 0 and price <= 0 are rejected, as are prices with more than 2 decimal places;
- a missing customer is accepted (the contract has no customer field); a missing description is fine
  when the stock code is present;
- an exact repeat of a line already in the same invoice is dropped and counted as a duplicate;
- a cell longer than its field allows (64 characters for invoice, stock code and store, 200 for the
  description, ``CELL_MAX`` for any other column) rejects its row (``too_long``); the rest of the file and
  of its invoice go on.
"""

from __future__ import annotations

import csv
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from scout.contract import IDENT_MAX, MAX_ITEMS, TEXT_MAX, Transaction, ts_out_of_range

FIELDS: Final = ("invoice", "stock_code", "description", "quantity", "invoice_date", "price", "customer", "store")
REQUIRED: Final = ("invoice", "stock_code", "quantity", "invoice_date", "price")
NON_PRODUCT_CODES: Final = frozenset({
    "POST", "DOT", "ADJUST", "ADJUST2", "M", "D", "C2", "C3", "S", "B", "BANK CHARGES", "PADS", "AMAZONFEE", "CRUK",
})
NON_PRODUCT_PATTERN: Final = re.compile(r"^(TEST|gift_)", re.IGNORECASE)
MAX_INVOICES_REMEMBERED: Final = 5_000_000
OPEN_INVOICES: Final = 16  # invoices in the sample interleave with at most 3 others
# The longest a cell may be: the contract's limits for the mapped fields, and this for any other column.
CELL_MAX: Final = 1_000
FIELD_MAX: Final = {"invoice": IDENT_MAX, "stock_code": IDENT_MAX, "store": IDENT_MAX, "description": TEXT_MAX}
# The CSV reader's own limit (its default, 128 KiB, failed the whole file): a longer cell is read, and its
# row rejected ``too_long``; only a single cell past this many characters stops the file, since the reader
# can then no longer tell where its row ends.
READ_FIELD_LIMIT: Final = 16 * 1024 * 1024


class UploadFormatError(ValueError):
    """The file cannot be read as the mapped CSV at all (header, quoting, encoding)."""


@dataclass(frozen=True)
class Mapping:
    """Which CSV column feeds which field, plus the fixed parts (time zone, currency, date format)."""

    columns: dict[str, str]
    timezone: str = "Europe/London"
    currency: str = "GBP"
    date_format: str = "%Y-%m-%d %H:%M:%S"
    store_id: str | None = None  # a fixed store instead of the store column

    @classmethod
    def preset(cls, name: str) -> Mapping:
        if name not in PRESETS:
            raise UploadFormatError(f"unknown mapping preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        return PRESETS[name]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Mapping:
        columns = dict(raw.get("columns", {}))
        unknown = set(columns) - set(FIELDS)
        if unknown:
            raise UploadFormatError(f"unknown mapping fields: {', '.join(sorted(unknown))}")
        missing = [f for f in REQUIRED if f not in columns]
        if missing or ("store" not in columns and not raw.get("store_id")):
            raise UploadFormatError(f"mapping lacks {', '.join(missing) or 'store (or a fixed store_id)'}")
        ZoneInfo(str(raw.get("timezone", "Europe/London")))
        return cls(columns=columns, **{k: raw[k] for k in ("timezone", "currency", "date_format", "store_id")
                                       if k in raw})


PRESETS: Final = {
    "online_retail_ii": Mapping(columns={
        "invoice": "Invoice", "stock_code": "StockCode", "description": "Description", "quantity": "Quantity",
        "invoice_date": "InvoiceDate", "price": "Price", "customer": "Customer ID", "store": "Country",
    }),
}


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str
    value: str = ""


@dataclass
class Group:
    """One invoice: its transaction (None when no line survived), the rows read, errors and duplicates."""

    invoice: str
    rows: int = 0
    transaction: Transaction | None = None
    errors: list[RowError] = field(default_factory=list)
    duplicates: list[RowError] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.transaction.items) if self.transaction is not None else 0


class _Line(NamedTuple):  # a tuple: cheap to build, and hashable to find repeated lines
    stock_code: str
    description: str | None
    qty: int
    price: Decimal
    ts: datetime
    store: str


class _RowInvalid(Exception):
    def __init__(self, column: str, reason: str, value: str) -> None:
        self.column, self.reason, self.value = column, reason, value


class _Parser:
    """Turns one CSV record into a line or a ``_RowInvalid``; knows the column positions."""

    def __init__(self, header: list[str], mapping: Mapping, ts_range: tuple[datetime, datetime] | None = None) -> None:
        names = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for f, c in mapping.columns.items() if f in REQUIRED or f == "store"
                   if c not in names]
        if missing:
            raise UploadFormatError(f"missing columns: {', '.join(missing)} (header: {', '.join(names)})")
        self.mapping = mapping
        self.names = names
        self.width = len(names)
        self.index = {f: names.index(c) for f, c in mapping.columns.items() if c in names}
        self.limits = [CELL_MAX] * len(names)
        for name, i in self.index.items():
            self.limits[i] = FIELD_MAX.get(name, CELL_MAX)
        self.zone = ZoneInfo(mapping.timezone)
        self.ts_range = ts_range
        self.dates: dict[str, datetime] = {}  # the lines of an invoice share their timestamp
        self.prices: dict[str, Decimal | _RowInvalid] = {}  # a catalogue repeats its prices

    def column(self, name: str) -> str:
        return self.mapping.columns.get(name, name)

    def value(self, record: list[str], name: str) -> str:
        i = self.index.get(name)
        return record[i].strip() if i is not None else ""

    def too_long(self, record: list[str], row: int) -> RowError | None:
        """The first cell longer than its column allows (the contract's limit, or ``CELL_MAX``), as a row error."""
        for i, cell in enumerate(record):
            limit = self.limits[i] if i < len(self.limits) else CELL_MAX
            if len(cell) > limit and len(cell.strip()) > limit:
                name = self.names[i] if i < len(self.names) else "*"
                return RowError(row, name, "too_long", f"{len(cell)} characters, at most {limit}: {cell[:40]}...")
        return None

    def invoice(self, record: list[str]) -> str:
        return self.value(record, "invoice")

    def line(self, record: list[str]) -> _Line:
        if len(record) != self.width:
            raise _RowInvalid("*", "wrong_field_count", f"{len(record)} fields, header has {self.width}")
        invoice = self.invoice(record)
        if not invoice:
            raise _RowInvalid(self.column("invoice"), "missing_value", "")
        if invoice[:1] in ("C", "c"):
            raise _RowInvalid(self.column("invoice"), "cancellation", invoice)
        code = self.value(record, "stock_code")
        if not code:
            raise _RowInvalid(self.column("stock_code"), "missing_value", "")
        if code.upper() in NON_PRODUCT_CODES or NON_PRODUCT_PATTERN.match(code):
            raise _RowInvalid(self.column("stock_code"), "non_product_code", code)
        return _Line(code, self.value(record, "description") or None, self._qty(record), self._price(record),
                     self._ts(record), self.mapping.store_id or self._store(record))

    def _qty(self, record: list[str]) -> int:
        raw = self.value(record, "quantity")
        try:
            qty = int(raw)
        except ValueError:
            raise _RowInvalid(self.column("quantity"), "not_an_integer", raw) from None
        if qty <= 0:
            raise _RowInvalid(self.column("quantity"), "non_positive_quantity", raw)
        if qty > 1_000_000:
            raise _RowInvalid(self.column("quantity"), "quantity_too_large", raw)
        return qty

    def _price(self, record: list[str]) -> Decimal:
        raw = self.value(record, "price")
        known = self.prices.get(raw)
        if known is None:
            try:
                known = self._parse_price(raw)
            except _RowInvalid as bad:
                known = bad
            if len(self.prices) > 10_000:
                self.prices.clear()
            self.prices[raw] = known
        if isinstance(known, _RowInvalid):
            raise _RowInvalid(known.column, known.reason, known.value)
        return known

    def _parse_price(self, raw: str) -> Decimal:
        try:
            price = Decimal(raw)
        except InvalidOperation:
            raise _RowInvalid(self.column("price"), "not_a_number", raw) from None
        if not price.is_finite() or price <= 0:
            raise _RowInvalid(self.column("price"), "non_positive_price", raw)
        if price != price.quantize(Decimal("0.01")):
            raise _RowInvalid(self.column("price"), "more_than_2_decimal_places", raw)
        if price >= Decimal("1000000"):
            raise _RowInvalid(self.column("price"), "price_too_large", raw)
        return price.quantize(Decimal("0.01"))

    def _ts(self, record: list[str]) -> datetime:
        raw = self.value(record, "invoice_date")
        if (ts := self.dates.get(raw)) is not None:
            return ts
        try:
            ts = datetime.strptime(raw, self.mapping.date_format).replace(tzinfo=self.zone)
        except ValueError:
            raise _RowInvalid(self.column("invoice_date"), "bad_date", raw) from None
        if self.ts_range is not None:
            earliest, latest = self.ts_range
            if ts_out_of_range(ts, earliest=earliest, latest=latest) is not None:
                raise _RowInvalid(self.column("invoice_date"), "implausible_date", raw)
        if len(self.dates) > 10_000:
            self.dates.clear()
        self.dates[raw] = ts
        return ts

    def _store(self, record: list[str]) -> str:
        store = self.value(record, "store")
        if not store:
            raise _RowInvalid(self.column("store"), "missing_value", store)
        return store


def map_csv(stream: Iterable[str], mapping: Mapping, *, window: int = OPEN_INVOICES,
            ts_range: tuple[datetime, datetime] | None = None) -> Iterator[Group]:
    """Groups the rows of each invoice; an invoice is yielded once ``window`` newer invoices have started.
    A date outside ``ts_range`` (earliest, latest) is rejected ``implausible_date``."""
    if csv.field_size_limit() < READ_FIELD_LIMIT:
        csv.field_size_limit(READ_FIELD_LIMIT)  # process-wide: it only ever grows, for every reader
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise UploadFormatError("empty file: no header row")
        parser = _Parser(header, mapping, ts_range)
        yield from _groups(reader, parser, window)
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise UploadFormatError(f"line {reader.line_num}: a single cell of more than {READ_FIELD_LIMIT} "
                                    "characters; the file cannot be read past it") from None
        raise UploadFormatError(f"line {reader.line_num}: malformed CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UploadFormatError(f"after line {reader.line_num}: not UTF-8 text ({exc.reason})") from None


def _groups(reader: Any, parser: _Parser, window: int) -> Iterator[Group]:
    open_: OrderedDict[str, tuple[Group, dict[_Line, int]]] = OrderedDict()
    closed: set[str] = set()
    for record in reader:
        if not "".join(record).strip():
            continue  # blank line (every cell empty or spaces)
        row = reader.line_num
        if (oversized := parser.too_long(record, row)) is not None:
            yield Group("", rows=1, errors=[oversized])  # kept out of its invoice, which goes on without it
            continue
        invoice = parser.invoice(record)
        if invoice in open_:
            open_.move_to_end(invoice)
        else:
            while len(open_) >= window:
                yield _close(open_, closed, parser.mapping)
            open_[invoice] = (Group(invoice), {})
        group, lines = open_[invoice]
        group.rows += 1
        try:
            if invoice in closed:
                raise _RowInvalid(parser.column("invoice"), "invoice_not_contiguous", invoice)
            line = parser.line(record)
        except _RowInvalid as bad:
            group.errors.append(RowError(row, bad.column, bad.reason, bad.value))
            continue
        if line in lines:
            group.duplicates.append(RowError(row, "*", "duplicate_line", f"same as row {lines[line]}"))
        else:
            lines[line] = row
    while open_:
        yield _close(open_, closed, parser.mapping)


def _close(open_: OrderedDict[str, tuple[Group, dict[_Line, int]]], closed: set[str], mapping: Mapping) -> Group:
    invoice, (group, lines) = open_.popitem(last=False)
    if len(closed) < MAX_INVOICES_REMEMBERED:
        closed.add(invoice)
    return _finish(group, lines, mapping)


def _finish(group: Group, lines: dict[_Line, int], mapping: Mapping) -> Group:
    if not lines:
        return group
    if len(lines) > MAX_ITEMS:
        rows = sorted(lines.values())
        group.errors.extend(RowError(r, mapping.columns["invoice"], "too_many_lines",
                                     f"{len(lines)} lines, at most {MAX_ITEMS}") for r in rows)
        return group
    first = next(iter(lines))
    items = [{"product_id": ln.stock_code, "product_name": ln.description, "qty": ln.qty,
              "unit_price": ln.price, "line_amount": ln.price * ln.qty} for ln in lines]
    try:
        group.transaction = Transaction.model_validate({
            "transaction_id": group.invoice, "store_id": first.store, "ts": first.ts,
            "total_amount": sum((ln.price * ln.qty for ln in lines), Decimal(0)),
            "currency": mapping.currency, "items": items,
        })
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        group.errors.extend(RowError(r, mapping.columns["invoice"], "invalid_transaction", detail)
                            for r in sorted(lines.values()))
    return group
