"""The product catalogue: import a CSV of products, and re-link unlinked line items when it changed.

Example::

    counts = import_products(conn, read_catalogue_csv(Path("products.csv")))
    details = relink(pool, settings)          # the `product-relink` job
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from scout.db import q
from scout.errors import TerminalError
from scout.settings import Settings
from streams.silver.catalogue import LEARN_FROM_LINES
from streams.silver.linking import Catalogue, normalise_name

REQUIRED = ("sku", "name")


class CatalogueFileError(TerminalError):
    """The catalogue file cannot be imported as it is."""


@dataclass(frozen=True)
class ProductRow:
    sku: str
    name: str
    brand: str | None
    category: str | None


def read_catalogue_csv(path: Path) -> Iterator[ProductRow]:
    """Rows of a CSV with columns sku,name[,brand,category]; errors name the line and column."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise CatalogueFileError(f"{path}: missing column(s) {missing}; expected sku,name[,brand,category]")
        for line, row in enumerate(reader, start=2):
            sku, name = (row.get("sku") or "").strip(), (row.get("name") or "").strip()
            if not sku or not name or not normalise_name(name):
                raise CatalogueFileError(f"{path}:{line}: sku and name must not be empty")
            yield ProductRow(sku, name, (row.get("brand") or "").strip() or None,
                             (row.get("category") or "").strip() or None)


def import_products(conn: psycopg.Connection, rows: Iterable[ProductRow], *, batch: int = 5000) -> dict[str, int]:
    """Upsert by SKU (names, brand and category of known SKUs are updated); one transaction."""
    inserted = updated = 0
    chunk: list[ProductRow] = []

    def flush() -> None:
        nonlocal inserted, updated
        unique = {r.sku: r for r in chunk}  # the last row of a SKU wins
        params = {"skus": list(unique), "names": [r.name for r in unique.values()],
                  "norms": [normalise_name(r.name) for r in unique.values()],
                  "brands": [r.brand for r in unique.values()], "categories": [r.category for r in unique.values()]}
        for (was_new,) in conn.execute(q("import_products"), params).fetchall():
            inserted, updated = inserted + int(was_new), updated + int(not was_new)
        chunk.clear()

    with conn.transaction():
        for row in rows:
            chunk.append(row)
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
        conn.execute(q("invalidate_name_links"))  # a renamed product: its exact name links are gone
    return {"inserted": inserted, "updated": updated}


def _catalogue(conn: psycopg.Connection, settings: Settings) -> Catalogue:
    rows = conn.execute(q("products_since"), {"after": 0}).fetchall()
    catalogue = Catalogue(((int(k), s, n) for k, s, n in rows), threshold=settings.link_fuzzy_threshold)
    for name, key in conn.execute(q("sku_confirmed_names"), {"limit": LEARN_FROM_LINES}).fetchall():
        catalogue.learn(name, int(key))  # receipt words confirmed by SKU ("XMAS" for "CHRISTMAS")
    return catalogue


def relink(pool: ConnectionPool, settings: Settings, *, batch: int = 5000, force: bool = False) -> dict[str, Any]:
    """Link lines left unlinked, if the catalogue changed since the last successful run."""
    with pool.connection() as conn:
        fingerprint = list(conn.execute(q("products_fingerprint")).fetchone() or (0, 0))
        last = conn.execute(q("last_job_details"), {"job": "product-relink"}).fetchone()
        conn.commit()
        if not force and last and last[0].get("fingerprint") == fingerprint:
            return {"skipped": "catalogue unchanged", "fingerprint": fingerprint}
        with conn.transaction():  # printed names the set path links in SQL: forget what the change could alter
            forgotten = len(conn.execute(q("invalidate_name_links")).fetchall())
        catalogue = _catalogue(conn, settings)
        linked = scanned = 0
        after = (0, 0)
        while True:
            rows = conn.execute(q("unlinked_lines"), {"after_txn": after[0], "after_line": after[1],
                                                      "limit": batch}).fetchall()
            if not rows:
                break
            updates = []
            for txn_id, line_no, name in rows:
                match = catalogue.match(name)
                if match is not None:
                    updates.append({"txn_id": txn_id, "line_no": line_no, "product_key": match.product_key,
                                    "method": match.method, "confidence": match.confidence})
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(q("relink_line"), updates)
            linked += len(updates)
            scanned += len(rows)
            after = (rows[-1][0], rows[-1][1])
    return {"scanned": scanned, "linked": linked, "fingerprint": fingerprint, "name_links_forgotten": forgotten}
