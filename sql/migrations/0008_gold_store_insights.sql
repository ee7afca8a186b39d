-- Gold: store segments (value tier, order frequency, churn risk) and next-order predictions per store.
-- Both are relative to the latest transaction in the data ("as of"), never to the wall clock, so a
-- refresh of the same data gives the same answer. docs/ANALYSTS.md explains every column.

-- Platinum: built on gold.sales_by_store_day, refreshed after it. Grain: store.
--   value tier   the mean of the store's revenue percentile and order-frequency percentile
--                (percentile = share of stores with a value <= the store's): high above 2/3,
--                medium above 1/3, low otherwise (integer arithmetic: exact at the boundaries).
--   frequency    orders per week over the store's tenure (first active day to the as-of day).
--   churn risk   days since the store's last active day, against its usual gap between active days
--                (7 days when it was active on one day only): low up to 1.5 gaps, medium up to 3, high beyond.
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

-- Grain: store (stores with at least two orders). An order is a silver transaction.
--   expected_next_at   last order + the mean interval between the store's consecutive orders
--   window_days        +/- max(1 day, 25% of the mean interval): the prediction is "inside the window"
--   confidence         a backtest: every interval after the first is predicted from the mean of the
--                      intervals before it; a hit is an actual interval inside that prediction's window.
--                      confidence = (hits + 1) / (tested + 2), the expected hit rate under a uniform prior
--                      (0.5 with no evidence; it approaches the observed hit rate as orders accumulate).
--   expected basket    from the last 5 orders: every linked product present in at least half of them, with
--                      its mean quantity in the orders that had it; value = mean total of those orders.
CREATE MATERIALIZED VIEW gold.next_order_predictions AS
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
LEFT JOIN basket b USING (store_id)
WITH DATA;
CREATE UNIQUE INDEX next_order_predictions_key ON gold.next_order_predictions (store_id);

GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader, scout_pipeline;
