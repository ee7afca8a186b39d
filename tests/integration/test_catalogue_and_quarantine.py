"""Catalogue import, fuzzy linking in the silver step, the re-link job, and quarantine replay."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from jobs.products import CatalogueFileError, import_products, read_catalogue_csv
from jobs.registry import run_job
from quality.rules import Thresholds
from scout.settings import Settings
from streams.silver.catalogue import CatalogueCache
from streams.silver.quarantine import list_quarantine, replay
from streams.silver.step import drain_once
from tests.factories import tx_dict
from tests.integration.test_silver_step import _seed


def _named(n: int, name: str) -> dict:  # type: ignore[type-arg]
    body = tx_dict(n)
    body["items"][0] = {"product_name": name, "qty": 2, "unit_price": "25.00"}
    return body


async def _drain(dsn: str, cache: CatalogueCache | None, limits: Thresholds | None = None) -> None:
    limits = limits or Thresholds.from_settings(Settings())
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        while True:
            catalogue = await cache.current(conn) if cache else None
            if not (await drain_once(conn, limit=100, limits=limits, catalogue=catalogue)).claimed:
                return


def _links(dsn: str) -> dict[str, tuple[str, str | None, Decimal]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT t.transaction_id, l.link_method, p.sku, l.link_confidence FROM silver.line_items l "
            "JOIN silver.transactions t USING (txn_id) LEFT JOIN silver.products p USING (product_key)"
        ).fetchall()
    return {t: (m, s, c) for t, m, s, c in rows}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_import_then_fuzzy_link_in_silver_and_relink_earlier_lines(database: str, tmp_path: Path) -> None:
    asyncio.run(_seed(database, [_named(1, "PINK CHERRY LIGHTS")]))  # before the catalogue knows it
    asyncio.run(_drain(database, CatalogueCache(threshold=80, refresh_s=0)))
    assert _links(database)["TXN-000001"][0] == "unlinked"

    csv_file = _write(tmp_path / "products.csv", "sku,name,brand,category\n"
                      "79323P,PINK CHERRY LIGHTS,,lights\n79323W,WHITE CHERRY LIGHTS,,lights\n")
    with psycopg.connect(database) as conn:
        assert import_products(conn, read_catalogue_csv(csv_file)) == {"inserted": 2, "updated": 0}
        assert import_products(conn, read_catalogue_csv(csv_file)) == {"inserted": 0, "updated": 2}

    asyncio.run(_seed(database, [_named(2, "PINK CHERY LIGHTS"), _named(3, "RED CHERRY LIGHTS"),
                                 _named(4, "white cherry lights")]))
    asyncio.run(_drain(database, CatalogueCache(threshold=80, refresh_s=0)))
    remembered = "SELECT name, method FROM silver.name_links ORDER BY name"
    with psycopg.connect(database) as conn:  # what linked is remembered for the set path, what did not is not
        assert conn.execute(remembered).fetchall() == [("PINK CHERY LIGHTS", "fuzzy"), ("white cherry lights", "name")]
    with ConnectionPool(database, min_size=1, max_size=1) as pool:
        settings = Settings(database_url=database)  # type: ignore[arg-type]
        first = run_job("product-relink", pool, settings)
        second = run_job("product-relink", pool, settings)
    with psycopg.connect(database) as conn:  # the catalogue changed: a closer product may exist for a fuzzy one
        assert conn.execute(remembered).fetchall() == [("white cherry lights", "name")]
    assert first["name_links_forgotten"] == 1
    links = _links(database)
    assert links["TXN-000002"][:2] == ("fuzzy", "79323P") and Decimal("0.8") <= links["TXN-000002"][2] < 1
    assert links["TXN-000003"][0] == "unlinked"  # another colour is another product
    assert links["TXN-000004"][:2] == ("name", "79323W")
    assert links["TXN-000001"][:2] == ("name", "79323P")  # re-linked by the job
    assert (first["scanned"], first["linked"]) == (2, 1)
    assert second["skipped"] == "catalogue unchanged"


def test_a_bad_catalogue_file_is_refused_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(CatalogueFileError, match="missing column"):
        list(read_catalogue_csv(_write(tmp_path / "a.csv", "code,title\n1,x\n")))
    with pytest.raises(CatalogueFileError, match=r"b\.csv:3"):
        list(read_catalogue_csv(_write(tmp_path / "b.csv", "sku,name\n1,ok\n2,\n")))


def test_quarantine_replay_after_the_cause_is_fixed(database: str) -> None:
    asyncio.run(_seed(database, [tx_dict(1, qty=1000, price="20.00"), tx_dict(2)]))
    asyncio.run(_drain(database, None))
    with psycopg.connect(database) as conn:
        held = list_quarantine(conn)
        assert [(r["transaction_id"], r["reasons"]) for r in held] == [("TXN-000001", ["over_threshold"])]
        assert replay(conn, reason="over_threshold") == [held[0]["bronze_id"]]
    asyncio.run(_drain(database, None))  # same threshold: quarantined again, open again
    with psycopg.connect(database) as conn:
        again = list_quarantine(conn)
        assert [r["id"] for r in again] == [held[0]["id"]] and again[0]["replayed_at"] is None
        replay(conn, ids=[held[0]["id"]])
    raised = Thresholds.from_settings(Settings(max_transaction_amount="50000"))
    asyncio.run(_drain(database, None, raised))
    with psycopg.connect(database) as conn:
        assert list_quarantine(conn) == []
        count = conn.execute("SELECT count(*) FROM silver.transactions").fetchone()
    assert count == (2,)


def _sku_line(n: int, sku: str, name: str) -> dict:  # type: ignore[type-arg]
    body = tx_dict(n)
    body["items"][0] = {"product_id": sku, "product_name": name, "qty": 2, "unit_price": "25.00"}
    return body


def test_an_unknown_sku_whose_name_links_becomes_that_products_alias(database: str, tmp_path: Path) -> None:
    csv_file = _write(tmp_path / "products.csv", "sku,name\n79323P,PINK CHERRY LIGHTS\n79323W,WHITE CHERRY LIGHTS\n")
    with psycopg.connect(database) as conn:
        import_products(conn, read_catalogue_csv(csv_file))
    asyncio.run(_seed(database, [_sku_line(1, "POS-1", "PINK CHERRY LIGHTS"),  # exactly the catalogue's name
                                 _sku_line(2, "POS-2", "WHT CHERRY LGHTS"),  # as a receipt prints it
                                 _sku_line(3, "POS-3", "RED CHERRY LIGHTS"),  # another colour: a new product
                                 _sku_line(4, "POS-4", "POS-4")]))  # no name: only its SKU
    asyncio.run(_drain(database, CatalogueCache(threshold=80, refresh_s=0)))
    asyncio.run(_seed(database, [_sku_line(5, "POS-2", "anything at all")]))  # the SKU has learned its product
    asyncio.run(_drain(database, CatalogueCache(threshold=80, refresh_s=0)))
    links = _links(database)
    assert links["TXN-000001"] == ("alias", "79323P", Decimal("0.990"))
    assert links["TXN-000002"][:2] == ("alias", "79323W") and Decimal("0.5") <= links["TXN-000002"][2] < 1
    assert links["TXN-000005"] == links["TXN-000002"]
    assert links["TXN-000003"] == ("sku", "POS-3", Decimal("1.000"))
    assert links["TXN-000004"] == ("sku", "POS-4", Decimal("1.000"))
    with psycopg.connect(database) as conn:
        aliases = conn.execute("SELECT a.sku, p.sku, a.method FROM silver.product_aliases a "
                               "JOIN silver.products p USING (product_key) ORDER BY a.sku").fetchall()
        products = sorted(r[0] for r in conn.execute("SELECT sku FROM silver.products"))
    assert aliases == [("POS-1", "79323P", "name"), ("POS-2", "79323W", "fuzzy")]
    assert products == ["79323P", "79323W", "POS-3", "POS-4"]


def test_the_catalogue_learns_receipt_words_from_lines_with_a_known_sku(database: str, tmp_path: Path) -> None:
    csv_file = _write(tmp_path / "products.csv", "sku,name\nA,PAPER CHAIN KIT CHRISTMAS\n"
                      "B,CHRISTMAS TREE DECORATION\nC,CHRISTMAS BAUBLES\n")
    with psycopg.connect(database) as conn:
        import_products(conn, read_catalogue_csv(csv_file))
    asyncio.run(_seed(database, [_named(1, "XMAS BAUBLES")]))  # nothing has taught XMAS yet
    asyncio.run(_drain(database, CatalogueCache(threshold=80, refresh_s=0)))
    asyncio.run(_seed(database, [_sku_line(2, "A", "PAPER CHAIN KIT XMAS"), _sku_line(3, "B", "XMAS TREE DECORATION")]))
    asyncio.run(_drain(database, CatalogueCache(threshold=80, refresh_s=0)))
    asyncio.run(_seed(database, [_named(4, "XMAS BAUBLES")]))
    asyncio.run(_drain(database, CatalogueCache(threshold=80, refresh_s=0)))  # a worker started now
    with ConnectionPool(database, min_size=1, max_size=1) as pool:
        relinked = run_job("product-relink", pool, Settings(database_url=database))  # type: ignore[arg-type]
    links = _links(database)
    assert links["TXN-000004"][:2] == ("fuzzy", "C")
    assert links["TXN-000001"][:2] == ("fuzzy", "C") and relinked["linked"] == 1  # the job learned it too
