-- Gold on incremental daily aggregates. Each silver-reading gold view that aggregates by UTC day reads a
-- table in schema agg (one per view) instead of scanning silver; the table is kept current per business day:
-- triggers on silver record the UTC days a statement touched in agg.dirty_days (one row per day and
-- aggregate), and ops.refresh_gold_aggregate recomputes exactly those days from silver. A refresh therefore
-- costs the days that changed (usually today), not the whole history. Readers are never blocked: the
-- days are replaced with DELETE + INSERT in one transaction (MVCC), and the views on top are still
-- refreshed CONCURRENTLY. The analyst-facing names and columns are unchanged; gold.sales_by_product_day,
-- the largest, becomes a plain view on its aggregate (always as current as the aggregate, nothing to diff).

CREATE SCHEMA agg;
COMMENT ON SCHEMA agg IS 'Per-day aggregates of silver that gold views read; maintained by ops.refresh_gold_aggregate';

-- Work queue: a day to recompute for an aggregate. Written by the silver triggers (append only, no index,
-- so concurrent silver batches never wait on each other here), emptied by the refresh.
CREATE TABLE agg.dirty_days (
    target text NOT NULL,
    day    date NOT NULL
);

-- Every transaction (with or without lines), by store and day: gold.sales_by_store_day.
CREATE TABLE agg.store_day (
    day        date    NOT NULL,
    store_id   text    NOT NULL,
    orders     bigint  NOT NULL,
    line_items bigint  NOT NULL,
    revenue    numeric NOT NULL,
    PRIMARY KEY (day, store_id)
);

-- Transactions with at least one line ("baskets"), by store and day: gold.basket_metrics.
CREATE TABLE agg.basket_day (
    day             date    NOT NULL,
    store_id        text    NOT NULL,
    orders          bigint  NOT NULL,
    units           bigint  NOT NULL,
    lines           bigint  NOT NULL,
    revenue         numeric NOT NULL,
    max_order_value numeric NOT NULL,
    PRIMARY KEY (day, store_id)
);

-- Baskets by store, day and UTC hour: gold.sales_by_hour (active days = rows per store and hour).
CREATE TABLE agg.store_hour_day (
    day         date    NOT NULL,
    store_id    text    NOT NULL,
    hour_of_day integer NOT NULL,
    orders      bigint  NOT NULL,
    units       bigint  NOT NULL,
    revenue     numeric NOT NULL,
    PRIMARY KEY (day, store_id, hour_of_day)
);

-- Linked lines by product and day: gold.sales_by_product_day.
CREATE TABLE agg.product_day (
    day         date    NOT NULL,
    product_key bigint  NOT NULL,
    orders      bigint  NOT NULL,
    units       bigint  NOT NULL,
    revenue     numeric NOT NULL,
    PRIMARY KEY (day, product_key)
);
CREATE UNIQUE INDEX product_day_product_idx ON agg.product_day (product_key, day);

-- Every line by product category ('uncategorized' when unlinked or without category) and day:
-- gold.sales_by_category_day.
CREATE TABLE agg.category_day (
    day      date    NOT NULL,
    category text    NOT NULL,
    orders   bigint  NOT NULL,
    units    bigint  NOT NULL,
    revenue  numeric NOT NULL,
    PRIMARY KEY (day, category)
);

-- Recompute one aggregate: the days queued for it (default) or everything (full_rebuild). Returns the
-- number of days recomputed (every day with data after a full rebuild). Owner-run, so the pipeline role
-- maintains agg without any grant on it. %1$s in each query is the set of silver transactions to read.
CREATE FUNCTION ops.refresh_gold_aggregate(target_name text, full_rebuild boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET work_mem = '64MB'
AS $$
DECLARE
    compute text;
    days date[];
    recomputed integer;
BEGIN
    compute := CASE target_name
        WHEN 'store_day' THEN $q$
            INSERT INTO agg.store_day (day, store_id, orders, line_items, revenue)
            SELECT (t.ts AT TIME ZONE 'UTC')::date, t.store_id, count(*), sum(t.item_count), sum(t.total_amount)
            FROM %1$s t
            GROUP BY 1, 2 $q$
        WHEN 'basket_day' THEN $q$
            INSERT INTO agg.basket_day (day, store_id, orders, units, lines, revenue, max_order_value)
            SELECT b.day, b.store_id, count(*), sum(b.units), sum(b.lines), sum(b.total_amount), max(b.total_amount)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, t.store_id, t.total_amount,
                         sum(l.qty) AS units, count(*) AS lines
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  GROUP BY t.txn_id, t.ts, t.store_id, t.total_amount) b
            GROUP BY 1, 2 $q$
        WHEN 'store_hour_day' THEN $q$
            INSERT INTO agg.store_hour_day (day, store_id, hour_of_day, orders, units, revenue)
            SELECT b.day, b.store_id, b.hour_of_day, count(*), sum(b.units), sum(b.total_amount)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, t.store_id,
                         extract(hour FROM t.ts AT TIME ZONE 'UTC')::integer AS hour_of_day, t.total_amount,
                         sum(l.qty) AS units
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  GROUP BY t.txn_id, t.ts, t.store_id, t.total_amount) b
            GROUP BY 1, 2, 3 $q$
        WHEN 'product_day' THEN $q$
            INSERT INTO agg.product_day (day, product_key, orders, units, revenue)
            SELECT o.day, o.product_key, count(*), sum(o.units), sum(o.revenue)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, l.product_key, l.txn_id,
                         sum(l.qty) AS units, sum(l.line_amount) AS revenue
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  WHERE l.product_key IS NOT NULL
                  GROUP BY 1, 2, 3) o
            GROUP BY 1, 2 $q$
        WHEN 'category_day' THEN $q$
            INSERT INTO agg.category_day (day, category, orders, units, revenue)
            SELECT o.day, o.category, count(*), sum(o.units), sum(o.revenue)
            FROM (SELECT (t.ts AT TIME ZONE 'UTC')::date AS day, coalesce(p.category, 'uncategorized') AS category,
                         l.txn_id, sum(l.qty) AS units, sum(l.line_amount) AS revenue
                  FROM %1$s t JOIN silver.line_items l ON l.txn_id = t.txn_id
                  LEFT JOIN silver.products p ON p.product_key = l.product_key
                  GROUP BY 1, 2, 3) o
            GROUP BY 1, 2 $q$
    END;
    IF compute IS NULL THEN
        RAISE EXCEPTION 'not a gold aggregate: %', target_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT full_rebuild THEN
        -- Claim the queued days first, then read silver: a silver commit after the claim has its day queued
        -- again (its marker was not visible to the claim), so it is recomputed on the next refresh.
        WITH claimed AS (DELETE FROM agg.dirty_days WHERE target = target_name RETURNING day)
        SELECT array_agg(DISTINCT day) INTO days FROM claimed;
        IF days IS NULL THEN
            RETURN 0;
        END IF;
        IF cardinality(days) <= 31 THEN
            EXECUTE format('DELETE FROM agg.%I WHERE day = ANY($1)', target_name) USING days;
            EXECUTE format(compute, $s$(SELECT t.* FROM unnest($1::date[]) AS d (day)
                                        JOIN silver.transactions t ON t.ts >= d.day::timestamp AT TIME ZONE 'UTC'
                                                                  AND t.ts < (d.day + 1)::timestamp AT TIME ZONE 'UTC')$s$)
                USING days;
            RETURN cardinality(days);
        END IF;
        -- More than a month queued (a backfill, a bulk load): one pass over silver is cheaper than per-day reads.
    END IF;
    DELETE FROM agg.dirty_days WHERE target = target_name;
    EXECUTE format('DELETE FROM agg.%I', target_name);
    EXECUTE format(compute, 'silver.transactions');
    EXECUTE format('SELECT count(DISTINCT day)::integer FROM agg.%I', target_name) INTO recomputed;
    RETURN recomputed;
END
$$;
REVOKE ALL ON FUNCTION ops.refresh_gold_aggregate(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.refresh_gold_aggregate(text, boolean) TO scout_pipeline;

-- Triggers: statement level with transition tables, so a silver batch of any size adds one small insert.
-- A change to a transaction dirties its day (old and new) for every aggregate; a change to a line dirties
-- the days of the transactions in its statement's txn_id range for the line-based aggregates (ranges, not
-- lookups per line: recomputing an extra day is harmless); a new category dirties the days the product sold.
CREATE FUNCTION agg.mark_transaction_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO agg.dirty_days (target, day)
        SELECT a.target, d.day
        FROM (SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day FROM new_rows) d
        CROSS JOIN unnest(ARRAY['store_day', 'basket_day', 'store_hour_day', 'product_day', 'category_day']) AS a (target);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO agg.dirty_days (target, day)
        SELECT a.target, d.day
        FROM (SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day FROM old_rows) d
        CROSS JOIN unnest(ARRAY['store_day', 'basket_day', 'store_hour_day', 'product_day', 'category_day']) AS a (target);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION agg.mark_line_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT min(txn_id), max(txn_id) INTO lo, hi FROM old_rows;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT min(txn_id), max(txn_id) INTO lo, hi FROM new_rows;
    ELSE
        SELECT min(txn_id), max(txn_id) INTO lo, hi
        FROM (SELECT txn_id FROM new_rows UNION ALL SELECT txn_id FROM old_rows) r;
    END IF;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO agg.dirty_days (target, day)
    SELECT a.target, d.day
    FROM (SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS day FROM silver.transactions
          WHERE txn_id BETWEEN lo AND hi) d
    CROSS JOIN unnest(ARRAY['basket_day', 'store_hour_day', 'product_day', 'category_day']) AS a (target);
    RETURN NULL;
END
$$;

CREATE FUNCTION agg.mark_category_days() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO agg.dirty_days (target, day)
    SELECT DISTINCT 'category_day', f.day
    FROM agg.product_day f
    WHERE f.product_key IN (SELECT n.product_key FROM new_rows n JOIN old_rows o USING (product_key)
                            WHERE n.category IS DISTINCT FROM o.category);
    RETURN NULL;
END
$$;

CREATE TRIGGER transactions_gold_insert AFTER INSERT ON silver.transactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg.mark_transaction_days();
CREATE TRIGGER transactions_gold_update AFTER UPDATE ON silver.transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg.mark_transaction_days();
CREATE TRIGGER transactions_gold_delete AFTER DELETE ON silver.transactions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agg.mark_transaction_days();
CREATE TRIGGER line_items_gold_insert AFTER INSERT ON silver.line_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg.mark_line_days();
CREATE TRIGGER line_items_gold_update AFTER UPDATE ON silver.line_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg.mark_line_days();
CREATE TRIGGER line_items_gold_delete AFTER DELETE ON silver.line_items
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION agg.mark_line_days();
CREATE TRIGGER products_gold_category AFTER UPDATE ON silver.products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION agg.mark_category_days();

-- Fill the aggregates from the silver already there.
SELECT ops.refresh_gold_aggregate(target, true)
FROM unnest(ARRAY['store_day', 'basket_day', 'store_hour_day', 'product_day', 'category_day']) AS target;

-- The views, same names and columns as before, now on the aggregates. The platinum views are recreated
-- unchanged (they read two of the recreated views).
DROP MATERIALIZED VIEW gold.dashboard_summary;
DROP MATERIALIZED VIEW gold.store_segments;
DROP MATERIALIZED VIEW gold.sales_by_store_day;
DROP MATERIALIZED VIEW gold.sales_by_hour;
DROP MATERIALIZED VIEW gold.sales_by_product_day;
DROP MATERIALIZED VIEW gold.sales_by_category_day;
DROP MATERIALIZED VIEW gold.basket_metrics;

CREATE MATERIALIZED VIEW gold.sales_by_store_day AS
SELECT store_id, day, orders, line_items, revenue
FROM agg.store_day
WITH DATA;
CREATE UNIQUE INDEX sales_by_store_day_key ON gold.sales_by_store_day (store_id, day);

CREATE MATERIALIZED VIEW gold.sales_by_hour AS
SELECT store_id,
       hour_of_day,
       sum(orders)::bigint  AS orders,
       sum(units)::bigint   AS units,
       sum(revenue)         AS revenue,
       count(*)::bigint     AS active_days
FROM agg.store_hour_day
GROUP BY store_id, hour_of_day
WITH DATA;
CREATE UNIQUE INDEX sales_by_hour_key ON gold.sales_by_hour (store_id, hour_of_day);

CREATE VIEW gold.sales_by_product_day AS
SELECT f.product_key, f.day, p.sku, p.name, p.brand, p.category, f.orders, f.units, f.revenue
FROM agg.product_day f
JOIN silver.products p ON p.product_key = f.product_key;

CREATE MATERIALIZED VIEW gold.sales_by_category_day AS
SELECT category, day, orders, units, revenue
FROM agg.category_day
WITH DATA;
CREATE UNIQUE INDEX sales_by_category_day_key ON gold.sales_by_category_day (category, day);

CREATE MATERIALIZED VIEW gold.basket_metrics AS
SELECT store_id,
       day,
       orders,
       units,
       lines,
       revenue,
       round(units::numeric / orders, 2)  AS avg_units_per_basket,
       round(lines::numeric / orders, 2)  AS avg_lines_per_basket,
       round(revenue / orders, 2)         AS average_order_value,
       max_order_value
FROM agg.basket_day
WITH DATA;
CREATE UNIQUE INDEX basket_metrics_key ON gold.basket_metrics (store_id, day);

CREATE MATERIALIZED VIEW gold.store_segments AS
WITH per_store AS (
    SELECT store_id, sum(orders)::bigint AS orders, sum(revenue) AS revenue, count(*)::bigint AS active_days,
           min(day) AS first_day, max(day) AS last_day
    FROM gold.sales_by_store_day
    GROUP BY store_id
),
measured AS (
    SELECT p.*,
           a.as_of_day,
           a.as_of_day - p.last_day                                       AS recency_days,
           a.as_of_day - p.first_day + 1                                  AS tenure_days,
           p.orders::numeric * 7 / (a.as_of_day - p.first_day + 1)        AS orders_per_week,
           coalesce((p.last_day - p.first_day)::numeric / nullif(p.active_days - 1, 0), 7) AS usual_gap_days
    FROM per_store p
    CROSS JOIN (SELECT max(last_day) AS as_of_day FROM per_store) a
),
ranked AS (
    SELECT m.*,
           count(*) OVER ()                          AS stores,
           count(*) OVER (ORDER BY revenue)          AS revenue_at_or_below,
           count(*) OVER (ORDER BY orders_per_week)  AS frequency_at_or_below
    FROM measured m
)
SELECT store_id,
       as_of_day,
       orders,
       revenue,
       round(revenue / orders, 2)                                          AS average_order_value,
       active_days,
       first_day,
       last_day,
       tenure_days,
       round(orders_per_week, 2)                                           AS orders_per_week,
       round((revenue_at_or_below + frequency_at_or_below)::numeric / (2 * stores), 3) AS value_score,
       CASE WHEN 3 * (revenue_at_or_below + frequency_at_or_below) > 4 * stores THEN 'high'
            WHEN 3 * (revenue_at_or_below + frequency_at_or_below) > 2 * stores THEN 'medium'
            ELSE 'low' END                                                 AS value_tier,
       recency_days,
       round(usual_gap_days, 2)                                            AS usual_gap_days,
       round(recency_days / usual_gap_days, 2)                             AS recency_ratio,
       CASE WHEN recency_days <= 1.5 * usual_gap_days THEN 'low'
            WHEN recency_days <= 3 * usual_gap_days THEN 'medium'
            ELSE 'high' END                                                AS churn_risk
FROM ranked
WITH DATA;
CREATE UNIQUE INDEX store_segments_key ON gold.store_segments (store_id);

CREATE MATERIALIZED VIEW gold.dashboard_summary AS
WITH totals AS (
    SELECT count(DISTINCT store_id)::bigint AS stores,
           coalesce(sum(orders), 0)::bigint AS orders,
           coalesce(sum(revenue), 0)        AS revenue,
           min(day)                         AS first_day,
           max(day)                         AS last_day
    FROM gold.sales_by_store_day
),
stores AS (
    SELECT store_id, sum(orders)::bigint AS orders, sum(revenue) AS revenue
    FROM gold.sales_by_store_day
    GROUP BY store_id
    ORDER BY sum(revenue) DESC, store_id
    LIMIT 5
),
products AS (
    SELECT product_key, sku, name, category, sum(units)::bigint AS units, sum(revenue) AS revenue
    FROM gold.sales_by_product_day
    GROUP BY product_key, sku, name, category
    ORDER BY sum(revenue) DESC, sum(units) DESC, product_key
    LIMIT 5
)
SELECT 1                                                      AS id,
       t.stores,
       (SELECT count(DISTINCT product_key) FROM gold.sales_by_product_day)::bigint AS products,
       t.orders,
       t.revenue,
       coalesce(round(t.revenue / nullif(t.orders, 0), 2), 0) AS average_order_value,
       t.first_day,
       t.last_day,
       coalesce((SELECT jsonb_agg(jsonb_build_object('store_id', s.store_id, 'orders', s.orders,
                                                     'revenue', s.revenue)
                                  ORDER BY s.revenue DESC, s.store_id) FROM stores s), '[]'::jsonb) AS top_stores,
       coalesce((SELECT jsonb_agg(jsonb_build_object('product_key', p.product_key, 'sku', p.sku, 'name', p.name,
                                                     'category', p.category, 'units', p.units,
                                                     'revenue', p.revenue)
                                  ORDER BY p.revenue DESC, p.units DESC, p.product_key) FROM products p),
                '[]'::jsonb)                                  AS top_products
FROM totals t
WITH DATA;
CREATE UNIQUE INDEX dashboard_summary_key ON gold.dashboard_summary (id);

-- The gold relations the refresh keeps current: every materialized view in gold, and every plain view in gold
-- that reads an aggregate (the freshness and presence checks of the quality suite list these).
CREATE VIEW ops.gold_relations AS
SELECT c.oid::regclass::text AS view_name, c.relkind = 'm' AS materialized
FROM pg_class c
WHERE c.relnamespace = 'gold'::regnamespace
  AND (c.relkind = 'm'
       OR (c.relkind = 'v' AND EXISTS (
           SELECT 1
           FROM pg_rewrite w
           JOIN pg_depend d ON d.objid = w.oid AND d.classid = 'pg_rewrite'::regclass
           JOIN pg_class t ON t.oid = d.refobjid
           WHERE w.ev_class = c.oid AND t.relnamespace = 'agg'::regnamespace)));
GRANT SELECT ON ops.gold_relations TO scout_pipeline;

-- The remaining views that still scan silver get the same sort and hash memory as the aggregates.
ALTER FUNCTION ops.refresh_materialized_view(text, boolean) SET work_mem = '64MB';

GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader, scout_pipeline;
