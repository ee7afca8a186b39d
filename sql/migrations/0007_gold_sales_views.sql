-- Gold: sales by hour of day, by product and day, by category and day, and basket metrics.
-- Days and hours are UTC (as in gold.sales_by_store_day). Each view has a unique index on its grain so it
-- can be refreshed CONCURRENTLY. Money is numeric throughout.

-- Objects created later in gold by the migrating role are readable by the reader and pipeline roles;
-- every gold migration still grants explicitly at its end, in case another role applies it.
ALTER DEFAULT PRIVILEGES IN SCHEMA gold GRANT SELECT ON TABLES TO scout_reader, scout_pipeline;

-- Grain: store x hour of day (0-23, UTC), over all days.
CREATE MATERIALIZED VIEW gold.sales_by_hour AS
WITH baskets AS (
    SELECT t.txn_id, t.store_id, t.ts, t.total_amount, sum(l.qty)::bigint AS units
    FROM silver.transactions t
    JOIN silver.line_items l USING (txn_id)
    GROUP BY t.txn_id
)
SELECT b.store_id,
       extract(hour FROM b.ts AT TIME ZONE 'UTC')::integer      AS hour_of_day,
       count(*)::bigint                                          AS orders,
       sum(b.units)::bigint                                      AS units,
       sum(b.total_amount)                                       AS revenue,
       count(DISTINCT (b.ts AT TIME ZONE 'UTC')::date)::bigint  AS active_days
FROM baskets b
GROUP BY b.store_id, extract(hour FROM b.ts AT TIME ZONE 'UTC')
WITH DATA;
CREATE UNIQUE INDEX sales_by_hour_key ON gold.sales_by_hour (store_id, hour_of_day);

-- Grain: product x UTC day. Only lines linked to a catalogue product (link_method <> 'unlinked').
CREATE MATERIALIZED VIEW gold.sales_by_product_day AS
SELECT p.product_key,
       (t.ts AT TIME ZONE 'UTC')::date AS day,
       p.sku,
       p.name,
       p.brand,
       p.category,
       count(DISTINCT l.txn_id)::bigint AS orders,
       sum(l.qty)::bigint               AS units,
       sum(l.line_amount)               AS revenue
FROM silver.line_items l
JOIN silver.transactions t USING (txn_id)
JOIN silver.products p ON p.product_key = l.product_key
GROUP BY p.product_key, (t.ts AT TIME ZONE 'UTC')::date
WITH DATA;
CREATE UNIQUE INDEX sales_by_product_day_key ON gold.sales_by_product_day (product_key, day);
CREATE INDEX sales_by_product_day_day_idx ON gold.sales_by_product_day (day);

-- Grain: category x UTC day. Lines of unlinked or uncategorised products count as 'uncategorized',
-- so the view's revenue is the sum of every line amount in silver.
CREATE MATERIALIZED VIEW gold.sales_by_category_day AS
SELECT coalesce(p.category, 'uncategorized') AS category,
       (t.ts AT TIME ZONE 'UTC')::date        AS day,
       count(DISTINCT l.txn_id)::bigint       AS orders,
       sum(l.qty)::bigint                     AS units,
       sum(l.line_amount)                     AS revenue
FROM silver.line_items l
JOIN silver.transactions t USING (txn_id)
LEFT JOIN silver.products p ON p.product_key = l.product_key
GROUP BY coalesce(p.category, 'uncategorized'), (t.ts AT TIME ZONE 'UTC')::date
WITH DATA;
CREATE UNIQUE INDEX sales_by_category_day_key ON gold.sales_by_category_day (category, day);

-- Grain: store x UTC day. Items per basket (units and lines) and average order value.
CREATE MATERIALIZED VIEW gold.basket_metrics AS
WITH baskets AS (
    SELECT t.txn_id, t.store_id, (t.ts AT TIME ZONE 'UTC')::date AS day, t.total_amount,
           sum(l.qty)::bigint AS units, count(*)::bigint AS lines
    FROM silver.transactions t
    JOIN silver.line_items l USING (txn_id)
    GROUP BY t.txn_id
)
SELECT store_id,
       day,
       count(*)::bigint                          AS orders,
       sum(units)::bigint                        AS units,
       sum(lines)::bigint                        AS lines,
       sum(total_amount)                         AS revenue,
       round(sum(units)::numeric / count(*), 2)  AS avg_units_per_basket,
       round(sum(lines)::numeric / count(*), 2)  AS avg_lines_per_basket,
       round(sum(total_amount) / count(*), 2)    AS average_order_value,
       max(total_amount)                         AS max_order_value
FROM baskets
GROUP BY store_id, day
WITH DATA;
CREATE UNIQUE INDEX basket_metrics_key ON gold.basket_metrics (store_id, day);

GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader, scout_pipeline;
