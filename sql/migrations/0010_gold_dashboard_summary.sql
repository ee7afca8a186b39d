-- Gold (platinum): the dashboard in one row, built on gold.sales_by_store_day and gold.sales_by_product_day
-- and refreshed after them. The constant key column "id" (always 1) carries the unique index that
-- REFRESH ... CONCURRENTLY needs. Money inside the jsonb lists is a JSON number (exact in jsonb).
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

GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader, scout_pipeline;
