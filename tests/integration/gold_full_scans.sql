-- Gold's incremental views computed from scratch over all of silver: the oracle of
-- tests/integration/test_gold_incremental.py (the views' definitions before migration 0028).

-- name: full_scan_next_order_predictions
-- The analytical views and the two views on totals as full scans (full_scan_*): their definitions before
-- migration 0028 (of silver, or of every day of an aggregate). The views read incremental state with the same
-- results; the tests compare the two, and an operator can run these to check a deployment's gold by hand.
WITH orders AS (
    SELECT t.store_id, t.txn_id, t.ts, t.total_amount,
           row_number() OVER (PARTITION BY t.store_id ORDER BY t.ts DESC, t.txn_id DESC) AS recency_rank,
           extract(epoch FROM t.ts - lag(t.ts) OVER (PARTITION BY t.store_id ORDER BY t.ts, t.txn_id))
               / 86400 AS interval_days
    FROM silver.transactions t
),
intervals AS (
    SELECT store_id, interval_days,
           avg(interval_days) OVER (PARTITION BY store_id ORDER BY ts, txn_id
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_mean
    FROM orders
    WHERE interval_days IS NOT NULL
),
per_store AS (
    SELECT store_id,
           count(*)::bigint   AS intervals,
           avg(interval_days) AS mean_interval_days,
           count(prior_mean)::bigint AS tested,
           count(*) FILTER (WHERE abs(interval_days - prior_mean) <= greatest(1, 0.25 * prior_mean))::bigint AS hits
    FROM intervals
    GROUP BY store_id
),
last_orders AS (
    SELECT store_id, count(*)::bigint AS orders, max(ts) AS last_order_at
    FROM orders
    GROUP BY store_id
),
recent AS (
    SELECT store_id, count(*)::bigint AS recent_orders, round(avg(total_amount), 2) AS expected_basket_value
    FROM orders
    WHERE recency_rank <= 5
    GROUP BY store_id
),
recent_items AS (
    SELECT o.store_id, l.product_key, count(DISTINCT o.txn_id)::bigint AS orders_with, sum(l.qty)::bigint AS qty
    FROM orders o
    JOIN silver.line_items l USING (txn_id)
    WHERE o.recency_rank <= 5 AND l.product_key IS NOT NULL
    GROUP BY o.store_id, l.product_key
),
basket AS (
    SELECT ri.store_id,
           jsonb_agg(jsonb_build_object(
               'product_key', ri.product_key, 'sku', p.sku, 'name', p.name,
               'expected_qty', round(ri.qty::numeric / ri.orders_with, 2),
               'share', round(ri.orders_with::numeric / r.recent_orders, 3))
               ORDER BY ri.orders_with DESC, ri.qty DESC, ri.product_key) AS expected_items
    FROM recent_items ri
    JOIN recent r USING (store_id)
    JOIN silver.products p ON p.product_key = ri.product_key
    WHERE 2 * ri.orders_with >= r.recent_orders
    GROUP BY ri.store_id
),
predicted AS (
    SELECT s.store_id, lo.orders, s.intervals, s.mean_interval_days, lo.last_order_at,
           lo.last_order_at + make_interval(secs => (s.mean_interval_days * 86400)::double precision)
               AS expected_next_at,
           greatest(1, 0.25 * s.mean_interval_days) AS window_days,
           s.tested, s.hits
    FROM per_store s
    JOIN last_orders lo USING (store_id)
)
SELECT p.store_id,
       (SELECT max(ts) FROM silver.transactions)                   AS as_of,
       p.orders,
       p.intervals,
       p.last_order_at,
       round(p.mean_interval_days, 2)                              AS mean_interval_days,
       p.expected_next_at,
       (p.expected_next_at AT TIME ZONE 'UTC')::date               AS expected_date,
       round(p.window_days, 2)                                     AS window_days,
       p.expected_next_at + make_interval(secs => (p.window_days * 86400)::double precision)
           < (SELECT max(ts) FROM silver.transactions)             AS overdue,
       p.tested                                                    AS backtested_intervals,
       p.hits                                                      AS backtest_hits,
       round((p.hits + 1)::numeric / (p.tested + 2), 3)            AS confidence,
       r.recent_orders                                             AS basket_from_orders,
       r.expected_basket_value,
       coalesce(b.expected_items, '[]'::jsonb)                     AS expected_items
FROM predicted p
JOIN recent r USING (store_id)
LEFT JOIN basket b USING (store_id);

-- name: full_scan_product_associations
WITH baskets AS (
    SELECT DISTINCT l.txn_id, l.product_key
    FROM silver.line_items l
    WHERE l.product_key IS NOT NULL
),
total AS (
    SELECT count(DISTINCT txn_id)::bigint AS n FROM baskets
),
per_product AS (
    SELECT product_key, count(*)::bigint AS orders FROM baskets GROUP BY product_key
),
frequent AS (
    SELECT b.txn_id, b.product_key
    FROM baskets b
    JOIN per_product p USING (product_key)
    WHERE p.orders >= 2 AND p.orders * 100 >= (SELECT n FROM total)
),
unordered AS (
    SELECT a.product_key AS k1, b.product_key AS k2, count(*)::bigint AS pair_orders
    FROM frequent a
    JOIN frequent b ON b.txn_id = a.txn_id AND b.product_key > a.product_key
    GROUP BY a.product_key, b.product_key
    HAVING count(*) >= 2 AND count(*) * 100 >= (SELECT n FROM total)
),
pairs AS (
    SELECT k1 AS antecedent_key, k2 AS consequent_key, pair_orders FROM unordered
    UNION ALL
    SELECT k2, k1, pair_orders FROM unordered
)
SELECT pr.antecedent_key,
       pa.sku                                                          AS antecedent_sku,
       pa.name                                                         AS antecedent_name,
       pr.consequent_key,
       pc.sku                                                          AS consequent_sku,
       pc.name                                                         AS consequent_name,
       pr.pair_orders,
       ca.orders                                                       AS antecedent_orders,
       cc.orders                                                       AS consequent_orders,
       t.n                                                             AS total_orders,
       round(pr.pair_orders::numeric / t.n, 6)                         AS support,
       round(pr.pair_orders::numeric / ca.orders, 4)                   AS confidence,
       round(pr.pair_orders::numeric * t.n / (ca.orders * cc.orders), 4) AS lift
FROM pairs pr
CROSS JOIN total t
JOIN per_product ca ON ca.product_key = pr.antecedent_key
JOIN per_product cc ON cc.product_key = pr.consequent_key
JOIN silver.products pa ON pa.product_key = pr.antecedent_key
JOIN silver.products pc ON pc.product_key = pr.consequent_key;

-- name: full_scan_sales_by_hour
SELECT store_id,
       hour_of_day,
       sum(orders)::bigint  AS orders,
       sum(units)::bigint   AS units,
       sum(revenue)         AS revenue,
       count(*)::bigint     AS active_days
FROM agg.store_hour_day
GROUP BY store_id, hour_of_day;

-- name: full_scan_dashboard_summary
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
FROM totals t;
