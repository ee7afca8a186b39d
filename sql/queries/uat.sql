-- Queries of `scout uat`: where the event hashes it got 2xx for ended up.

-- name: uat_progress
SELECT count(*) AS bronze,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM bronze.pending p WHERE p.bronze_id = b.id)) AS pending,
       (SELECT version FROM ops.watermarks WHERE name = 'silver') AS silver_version
FROM bronze.transactions b WHERE event_hash = ANY(%(hashes)s);

-- name: uat_silver
-- Silver does not index event hashes (migration 0026): each hash is found in bronze, its silver row by the key.
SELECT t.event_hash, t.store_id, t.transaction_id,
       bool_or(l.link_method IN ('fuzzy', 'name')) AS by_name
FROM bronze.transactions b
JOIN silver.transactions t
  ON t.store_id = b.store_id AND t.transaction_id = b.transaction_id AND t.event_hash = b.event_hash
LEFT JOIN silver.line_items l ON l.txn_id = t.txn_id
WHERE b.event_hash = ANY(%(hashes)s)
GROUP BY t.event_hash, t.store_id, t.transaction_id;

-- name: uat_silver_keys
SELECT store_id, transaction_id, count(*) AS n FROM silver.transactions
WHERE (store_id, transaction_id) IN (SELECT * FROM unnest(%(stores)s::text[], %(txns)s::text[]))
GROUP BY store_id, transaction_id HAVING count(*) > 1;

-- name: uat_quarantine
SELECT event_hash, reasons FROM silver.quarantine
WHERE event_hash = ANY(%(hashes)s) AND replayed_at IS NULL;

-- name: uat_totals
-- In one snapshot, with whether the view is current (silver has not moved since its refresh).
SELECT (SELECT count(*) FROM silver.transactions) AS silver_orders,
       (SELECT coalesce(sum(total_amount), 0) FROM silver.transactions) AS silver_revenue,
       (SELECT coalesce(sum(orders), 0) FROM gold.sales_by_store_day) AS gold_orders,
       (SELECT coalesce(sum(revenue), 0) FROM gold.sales_by_store_day) AS gold_revenue,
       EXISTS (SELECT 1 FROM ops.gold_refresh_state s, ops.watermarks w
               WHERE s.view_name = 'gold.sales_by_store_day' AND w.name = 'silver'
                 AND s.watermark >= w.version) AS gold_current;

-- name: uat_refresh_in_snapshot
-- Inside a REPEATABLE READ transaction that is rolled back: the view computed from the very snapshot in which
-- silver is then read (for a deployment whose silver never holds still between two scheduled refreshes).
REFRESH MATERIALIZED VIEW gold.sales_by_store_day;

-- name: uat_critical_alerts
SELECT rule, subject, count, message FROM ops.alerts
WHERE resolved_at IS NULL AND severity = 'critical' AND last_seen >= %(since)s
ORDER BY rule, subject;

-- name: uat_quality_runs_since
SELECT count(*) FROM ops.quality_runs WHERE started_at >= %(since)s;

-- name: uat_dead_letters
-- Poison messages UAT wrote straight to the topic, found by their keys.
SELECT convert_from(message_key, 'UTF8') AS key, reason FROM ops.dead_letters
WHERE message_key = ANY(%(keys)s::bytea[]);

-- name: uat_misspelt_unjudged
-- Misspelt lines that could not have been linked by name: their product (by the SKU the simulator took off the
-- line) was not in the catalogue, or entered it less than a worker's catalogue refresh before the transaction
-- was written to silver (a worker loads new products every SCOUT_CATALOGUE_REFRESH_S).
SELECT t.event_hash
FROM unnest(%(hashes)s::text[], %(skus)s::text[]) AS m(event_hash, sku)
JOIN bronze.transactions b ON b.event_hash = m.event_hash::char(64)  -- bronze's index (char, not text)
JOIN silver.transactions t
  ON t.store_id = b.store_id AND t.transaction_id = b.transaction_id AND t.event_hash = b.event_hash
LEFT JOIN silver.products p ON p.sku = m.sku
WHERE p.product_key IS NULL OR p.created_at > t.processed_at - make_interval(secs => %(refresh_s)s);
