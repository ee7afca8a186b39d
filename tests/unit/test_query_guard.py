"""The analyst query guard: what it refuses (and says why), what it lets through, and the LIMIT it enforces."""

from __future__ import annotations

import pytest

from ingest_api.query_guard import MAX_QUERY_CHARS, QueryRefused, guard


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        # DDL
        ("DROP MATERIALIZED VIEW gold.sales_by_store_day", "only a SELECT query is allowed; this is DROP"),
        ("CREATE TABLE gold.t AS SELECT 1", "only a SELECT query is allowed; this is CREATE"),
        ("ALTER TABLE gold.sales_by_store_day RENAME TO x", "only a SELECT query is allowed"),
        ("TRUNCATE gold.sales_by_store_day", "only a SELECT query is allowed"),
        ("GRANT SELECT ON silver.transactions TO scout_reader", "only a SELECT query is allowed"),
        # DML, also hidden inside a query
        ("DELETE FROM gold.sales_by_store_day", "only a SELECT query is allowed; this is DELETE"),
        ("INSERT INTO gold.sales_by_store_day VALUES (1)", "only a SELECT query is allowed; this is INSERT"),
        ("UPDATE gold.sales_by_store_day SET revenue = 0", "only a SELECT query is allowed; this is UPDATE"),
        ("WITH d AS (DELETE FROM gold.sales_by_store_day RETURNING *) SELECT * FROM d", "DELETE"),
        ("WITH u AS (UPDATE gold.x SET a = 1 RETURNING a) SELECT * FROM u", "UPDATE"),
        ("SELECT * INTO gold.copy FROM gold.sales_by_store_day", "SELECT ... INTO"),
        ("SELECT * FROM gold.sales_by_store_day FOR UPDATE", "row locks (FOR UPDATE/SHARE)"),
        ("SELECT * FROM gold.sales_by_store_day FOR SHARE", "row locks (FOR UPDATE/SHARE)"),
        ("COPY gold.sales_by_store_day TO '/tmp/out'", "only a SELECT query is allowed; this is COPY"),
        # several statements
        ("SELECT 1; SELECT 2", "exactly one statement is allowed; found 2"),
        ("SELECT * FROM gold.sales_by_store_day; DELETE FROM gold.sales_by_store_day", "exactly one statement"),
        ("BEGIN; SELECT 1", "exactly one statement"),
        # sleeping and functions with side effects
        ("SELECT pg_sleep(10)", "function pg_sleep is not allowed"),
        ("SELECT pg_catalog.pg_sleep(10)", "function pg_sleep is not allowed"),
        ('SELECT "pg_sleep"(10)', "function pg_sleep is not allowed"),
        ("SELECT PG_SLEEP_FOR('5 minutes')", "function pg_sleep_for is not allowed"),
        ("SELECT * FROM gold.sales_by_store_day WHERE pg_sleep(1) IS NULL", "function pg_sleep is not allowed"),
        ("SELECT set_config('role', 'postgres', false)", "function set_config is not allowed"),
        ("SELECT current_setting('data_directory')", "function current_setting is not allowed"),
        ("SELECT pg_read_file('/etc/passwd')", "function pg_read_file is not allowed"),
        ("SELECT lo_import('/etc/passwd')", "function lo_import is not allowed"),
        ("SELECT dblink('host=elsewhere', 'DELETE FROM t')", "function dblink is not allowed"),
        ("SELECT pg_terminate_backend(1)", "function pg_terminate_backend is not allowed"),
        ("SELECT pg_advisory_lock(1)", "function pg_advisory_lock is not allowed"),
        ("SELECT nextval('ops.job_runs_id_seq')", "function nextval is not allowed"),
        ("SELECT txid_current()", "function txid_current is not allowed"),
        ("SELECT query_to_xml('SELECT * FROM silver.transactions', true, true, '')", "function query_to_xml"),
        ("SELECT ts_stat('SELECT * FROM silver.transactions')", "function ts_stat is not allowed"),
        ("SELECT * FROM gold.sales_by_store_day, LATERAL pg_ls_dir('.') f", "function pg_ls_dir is not allowed"),
        ("SELECT ops.refresh_materialized_view('gold.sales_by_store_day')", "function ops.refresh_materialized_view"),
        # other schemas, unqualified names, catalogues
        ("SELECT * FROM silver.transactions", "silver.transactions is outside schema gold"),
        ("SELECT * FROM bronze.transactions", "bronze.transactions is outside schema gold"),
        ("SELECT * FROM ops.job_runs", "ops.job_runs is outside schema gold"),
        ("SELECT * FROM gold.sales_by_store_day g JOIN silver.stores s USING (store_id)", "silver.stores"),
        ("SELECT * FROM gold.x WHERE EXISTS (SELECT 1 FROM silver.transactions)", "silver.transactions"),
        ("SELECT 1 FROM gold.x UNION SELECT 1 FROM bronze.transactions", "bronze.transactions"),
        ("TABLE silver.transactions", "silver.transactions is outside schema gold"),
        ("SELECT * FROM pg_catalog.pg_authid", "pg_catalog.pg_authid is outside schema gold"),
        ("SELECT * FROM information_schema.tables", "information_schema.tables is outside schema gold"),
        ('SELECT * FROM "Gold".sales_by_store_day', "Gold.sales_by_store_day is outside schema gold"),
        ("SELECT * FROM otherdb.gold.sales_by_store_day", "only objects of schema gold in this database"),
        ("SELECT * FROM sales_by_store_day", "must be qualified with its schema: gold.sales_by_store_day"),
        ("SELECT * FROM pg_user", "must be qualified"),
        # a CTE does not make a catalogue table readable: PostgreSQL would resolve these to pg_catalog
        ("WITH pg_user AS (SELECT * FROM pg_user) SELECT * FROM pg_user", "must be qualified"),
        ("SELECT * FROM pg_user, (WITH pg_user AS (SELECT 1) SELECT * FROM pg_user) s", "must be qualified"),
        # comment tricks
        ("SELECT 1 -- harmless\n; DROP TABLE gold.sales_by_store_day", "exactly one statement"),
        ("SELECT 1 /* ; */ ; DELETE FROM gold.sales_by_store_day", "exactly one statement"),
        ("SELECT * FROM /*gold.*/silver.transactions", "silver.transactions is outside schema gold"),
        ("SELECT * FROM gold/**/.x, silver/* gold */.transactions", "silver.transactions is outside schema gold"),
        ("SELECT pg_sleep/**/(10)", "function pg_sleep is not allowed"),
        # everything else that is not one SELECT
        ("EXPLAIN ANALYZE SELECT 1", "only a SELECT query is allowed; this is EXPLAIN"),
        ("SET ROLE postgres", "only a SELECT query is allowed; this is SET"),
        ("VALUES (1)", "only a SELECT query is allowed; this is VALUES"),
        ("SELECT * FROM gold.sales_by_store_day WHERE store_id = $1", "query parameters"),
        ("", "the query is empty"),
        ("   ", "the query is empty"),
        ("SELECT (", "could not be parsed"),
        ("SELECT 1 " + " " * MAX_QUERY_CHARS, "longer than"),
    ],
)
def test_refused_with_the_reason(query: str, reason: str) -> None:
    with pytest.raises(QueryRefused) as refused:
        guard(query, max_rows=100)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM gold.sales_by_store_day",
        "select store_id, sum(revenue) from gold.sales_by_store_day group by 1 order by 2 desc",
        "SELECT * FROM Gold.Sales_By_Store_Day",
        'SELECT * FROM "gold"."sales_by_store_day"',
        "WITH s AS (SELECT store_id, revenue FROM gold.sales_by_store_day) SELECT * FROM s",
        "WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        "SELECT e->>'sku' FROM gold.next_order_predictions, jsonb_array_elements(expected_items) e",
        "SELECT date_trunc('week', day) AS week, sum(revenue) FROM gold.sales_by_store_day GROUP BY 1",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY revenue) FROM gold.sales_by_store_day",
        "SELECT store_id FROM gold.store_segments UNION SELECT store_id FROM gold.next_order_predictions",
        "SELECT * FROM gold.sales_by_store_day WHERE store_id LIKE 'S%' AND day > current_date - 30",
        "SELECT * FROM gold.sales_by_store_day; -- trailing comment",
        "(SELECT 1)",
    ],
)
def test_read_only_selects_over_gold_pass(query: str) -> None:
    guarded = guard(query, max_rows=100)
    assert guarded.sql.endswith("LIMIT 100")
    assert "--" not in guarded.sql and "/*" not in guarded.sql


def test_what_runs_is_regenerated_without_comments() -> None:
    guarded = guard("SELECT store_id /* the store */ FROM gold.sales_by_store_day -- all of them", max_rows=10)
    assert guarded.sql == "SELECT store_id FROM gold.sales_by_store_day LIMIT 10"


@pytest.mark.parametrize(
    ("query", "limit", "applied"),
    [
        ("SELECT * FROM gold.x", 50, True),                    # added
        ("SELECT * FROM gold.x LIMIT 10", 10, False),          # kept
        ("SELECT * FROM gold.x LIMIT 5000", 50, True),         # capped
        ("SELECT * FROM gold.x LIMIT ALL", 50, True),
        ("SELECT * FROM gold.x LIMIT (SELECT 10)", 50, True),  # not a plain number: replaced
        ("SELECT * FROM gold.x FETCH FIRST 7 ROWS ONLY", 7, False),
        ("SELECT * FROM gold.x FETCH FIRST 70 ROWS ONLY", 50, True),
        ("SELECT a FROM gold.x UNION SELECT a FROM gold.y LIMIT 99", 50, True),
        ("SELECT * FROM gold.x LIMIT 10 OFFSET 20", 10, False),
    ],
)
def test_a_limit_is_enforced(query: str, limit: int, applied: bool) -> None:
    guarded = guard(query, max_rows=50)
    assert (guarded.limit, guarded.limit_applied) == (limit, applied)
    if applied:
        assert guarded.sql.endswith("LIMIT 50")
