-- Gold: sales by store and UTC day. The unique index allows REFRESH ... CONCURRENTLY.
CREATE MATERIALIZED VIEW gold.sales_by_store_day AS
SELECT t.store_id,
       (t.ts AT TIME ZONE 'UTC')::date AS day,
       count(*)::bigint                 AS orders,
       sum(t.item_count)::bigint        AS line_items,
       sum(t.total_amount)              AS revenue
FROM silver.transactions t
GROUP BY t.store_id, (t.ts AT TIME ZONE 'UTC')::date
WITH DATA;

CREATE UNIQUE INDEX sales_by_store_day_key ON gold.sales_by_store_day (store_id, day);
