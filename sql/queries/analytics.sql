-- Queries of the analyst endpoints (ingest_api/analytics). Every one runs inside a read-only
-- transaction as scout_reader, after the three session statements below.

-- name: reader_read_only
SET TRANSACTION READ ONLY;

-- name: reader_role
SET LOCAL ROLE scout_reader;

-- name: reader_limits
SELECT set_config('statement_timeout', %(timeout)s, true), set_config('search_path', 'pg_catalog', true);

-- name: dashboard_summary
SELECT stores, products, orders, revenue, average_order_value, first_day, last_day, top_stores, top_products
FROM gold.dashboard_summary;

-- name: refresh_status_of
SELECT view_name, last_refresh_at, current FROM gold.refresh_status WHERE view_name = ANY(%(views)s::text[]);

-- name: store_segment
SELECT store_id, as_of_day, orders, revenue, average_order_value, active_days, first_day, last_day,
       tenure_days, orders_per_week, value_score, value_tier, recency_days, usual_gap_days, recency_ratio,
       churn_risk
FROM gold.store_segments
WHERE store_id = %(store_id)s;

-- name: store_prediction
SELECT as_of, orders, intervals, last_order_at, mean_interval_days, expected_next_at, expected_date,
       window_days, overdue, backtested_intervals, backtest_hits, confidence, basket_from_orders,
       expected_basket_value, expected_items
FROM gold.next_order_predictions
WHERE store_id = %(store_id)s;

-- name: upsell_suggestions
-- The best rule per product not in the basket, over every basket product, ranked by lift then confidence.
SELECT consequent_sku AS sku, consequent_name AS name, antecedent_sku AS because_of, support, confidence, lift,
       pair_orders
FROM (
    SELECT DISTINCT ON (consequent_key) *
    FROM gold.product_associations
    WHERE antecedent_sku = ANY(%(basket)s::text[])
      AND coalesce(consequent_sku, '') <> ALL(%(basket)s::text[])
    ORDER BY consequent_key, lift DESC, confidence DESC, support DESC, antecedent_sku
) best
ORDER BY lift DESC, confidence DESC, support DESC, consequent_sku
LIMIT %(limit)s;

-- name: trend_days
-- Two periods of N days ending on the latest day with sales (of the store, when given), every
-- day present (zero when there were no sales); "current" marks the later period.
WITH bounds AS (
    SELECT max(day) AS as_of
    FROM gold.sales_by_store_day
    WHERE %(store_id)s::text IS NULL OR store_id = %(store_id)s::text
),
days AS (
    SELECT b.as_of - g AS day, g < %(days)s AS current
    FROM bounds b
    CROSS JOIN generate_series(0, 2 * %(days)s - 1) AS g
    WHERE b.as_of IS NOT NULL
),
sales AS (
    SELECT day, sum(orders)::bigint AS orders, sum(revenue) AS revenue
    FROM gold.sales_by_store_day
    WHERE (%(store_id)s::text IS NULL OR store_id = %(store_id)s::text)
      AND day > (SELECT as_of FROM bounds) - 2 * %(days)s
    GROUP BY day
)
SELECT d.day, d.current, coalesce(s.orders, 0)::bigint AS orders, coalesce(s.revenue, 0)::numeric(14,2) AS revenue
FROM days d
LEFT JOIN sales s USING (day)
ORDER BY d.day;
