-- Queries of the quality guardrails (quality/).
--
-- Blocks named rule_<rule> are the batch checks of quality/rules.py: unexpected-rows queries run by
-- Great Expectations (UnexpectedRowsExpectation). Each returns one row per failing key with the columns
-- `key` and `detail` (aggregate rules: one summary row, plus `unexpected`). `{batch}` is filled by Great
-- Expectations; the other {placeholders} are thresholds filled by quality.rules.batch_sql. No other braces
-- and no percent signs may appear in these blocks. The line rules read what they need of a transaction's lines
-- from columns of the batch (silver_with_line_facts): every transaction's lines read once for all of them, by
-- a subquery per transaction (its index), never by a join the planner could turn into a scan of every line. The
-- silver step runs these checks over each batch it writes too (streams.silver.plan.judge_sql), its batch built
-- by the same block.

-- silver_with_line_facts: silver transactions with the facts of their lines that the line rules judge, one
-- index lookup per transaction; completed by a WHERE on t (the window, or the transactions just written). Only
-- the line rules' batch carries it: a rule that joins the batch's txn_id to line items gets a scan of every line
-- item from the planner when the batch holds this lateral subquery (735 ms against 12 ms at 3M line items).
-- Great Expectations takes a batch query only when it starts with SELECT: no comment inside these blocks.

-- name: silver_with_line_facts
SELECT t.*, f.line_count, f.line_money_negative, f.line_qty_negative, f.line_amount_mismatch, f.line_sum
FROM silver.transactions t
CROSS JOIN LATERAL (
    SELECT count(*) AS line_count,
           bool_or(l.unit_price < 0 OR l.line_amount < 0) AS line_money_negative,
           bool_or(l.qty < 0) AS line_qty_negative,
           bool_or(l.line_amount <> l.qty * l.unit_price) AS line_amount_mismatch,
           sum(l.line_amount) AS line_sum
    FROM silver.line_items l WHERE l.txn_id = t.txn_id
) f

-- name: batch_silver_recent
SELECT * FROM silver.transactions WHERE processed_at >= {since}

-- name: batch_silver_recent_lines
{silver_with_line_facts}
WHERE t.processed_at >= {since}

-- name: batch_quarantine_recent
SELECT * FROM silver.quarantine WHERE created_at >= {since} AND replayed_at IS NULL

-- name: batch_gold_refresh_state
SELECT * FROM ops.gold_refresh_state

-- name: batch_gold_view
SELECT * FROM {view}

-- name: rule_negative_amount
WITH t AS (SELECT * FROM {batch})
SELECT t.store_id || '/' || t.transaction_id AS key, 'in silver: total ' || t.total_amount AS detail
FROM t
WHERE t.total_amount < 0 OR t.line_money_negative
UNION ALL
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?'), 'quarantined #' || z.id
FROM silver.quarantine z
WHERE 'negative_amount' = ANY (z.reasons) AND z.replayed_at IS NULL AND z.created_at >= {since}

-- name: rule_negative_quantity
WITH t AS (SELECT * FROM {batch})
SELECT t.store_id || '/' || t.transaction_id AS key, 'in silver: a line with qty below zero' AS detail
FROM t
WHERE t.line_qty_negative
UNION ALL
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?'), 'quarantined #' || z.id
FROM silver.quarantine z
WHERE 'negative_quantity' = ANY (z.reasons) AND z.replayed_at IS NULL AND z.created_at >= {since}

-- name: rule_over_threshold
WITH t AS (SELECT * FROM {batch})
SELECT t.store_id || '/' || t.transaction_id AS key,
       'in silver: total ' || t.total_amount || ' over {max_transaction_amount}' AS detail
FROM t
WHERE t.total_amount > {max_transaction_amount}
UNION ALL
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?'), 'quarantined #' || z.id
FROM silver.quarantine z
WHERE 'over_threshold' = ANY (z.reasons) AND z.replayed_at IS NULL AND z.created_at >= {since}

-- name: rule_line_amount_mismatch
WITH t AS (SELECT * FROM {batch})
SELECT t.store_id || '/' || t.transaction_id AS key, 'in silver: line_amount is not qty x unit_price' AS detail
FROM t
WHERE t.line_amount_mismatch
UNION ALL
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?'), 'quarantined #' || z.id
FROM silver.quarantine z
WHERE 'line_amount_mismatch' = ANY (z.reasons) AND z.replayed_at IS NULL AND z.created_at >= {since}

-- name: rule_line_sum_mismatch
WITH t AS (SELECT * FROM {batch})
SELECT t.store_id || '/' || t.transaction_id AS key,
       'in silver: lines sum to ' || t.line_sum || ', total is ' || t.total_amount AS detail
FROM t
WHERE abs(t.line_sum - t.total_amount) > greatest({line_sum_tolerance} * abs(t.total_amount), 0.01)
UNION ALL
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?'), 'quarantined #' || z.id
FROM silver.quarantine z
WHERE 'line_sum_mismatch' = ANY (z.reasons) AND z.replayed_at IS NULL AND z.created_at >= {since}

-- name: rule_future_timestamp
WITH t AS (SELECT * FROM {batch})
SELECT t.store_id || '/' || t.transaction_id AS key,
       'in silver: ts ' || t.ts || ' received ' || t.received_at AS detail
FROM t
WHERE t.ts > t.received_at + make_interval(secs => {future_skew_s})
UNION ALL
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?'), 'quarantined #' || z.id
FROM silver.quarantine z
WHERE 'future_timestamp' = ANY (z.reasons) AND z.replayed_at IS NULL AND z.created_at >= {since}

-- name: rule_conflicting_duplicate
WITH z AS (SELECT * FROM {batch})
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?') AS key,
       'quarantined #' || z.id AS detail
FROM z WHERE 'conflicting_duplicate' = ANY (z.reasons)

-- name: rule_invalid_payload
WITH z AS (SELECT * FROM {batch})
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?') AS key,
       'quarantined #' || z.id AS detail
FROM z WHERE 'invalid_payload' = ANY (z.reasons)

-- name: rule_processing_error
WITH z AS (SELECT * FROM {batch})
SELECT coalesce(z.store_id, '?') || '/' || coalesce(z.transaction_id, '?') AS key,
       'quarantined #' || z.id AS detail
FROM z WHERE 'processing_error' = ANY (z.reasons)

-- name: rule_link_coverage
WITH t AS (SELECT * FROM {batch}),
s AS (
    SELECT count(*) AS lines, count(*) FILTER (WHERE l.link_method = 'unlinked') AS unlinked
    FROM silver.line_items l
    WHERE l.txn_id IN (SELECT txn_id FROM t)
)
SELECT 'recent line items' AS key,
       'coverage ' || round(1 - s.unlinked::numeric / s.lines, 4) || ' of ' || s.lines
       || ' lines, minimum {link_coverage_min}' AS detail,
       s.unlinked AS unexpected
FROM s
WHERE s.lines >= {min_lines} AND 1 - s.unlinked::numeric / s.lines < {link_coverage_min}

-- name: rule_fuzzy_link_share
WITH t AS (SELECT * FROM {batch}),
s AS (
    SELECT count(*) AS lines, count(*) FILTER (WHERE l.link_method = 'fuzzy') AS fuzzy
    FROM silver.line_items l
    WHERE l.txn_id IN (SELECT txn_id FROM t)
)
SELECT 'recent line items' AS key,
       'fuzzy share ' || round(s.fuzzy::numeric / s.lines, 4) || ' of ' || s.lines
       || ' lines, maximum {fuzzy_link_share_max}' AS detail,
       s.fuzzy AS unexpected
FROM s
WHERE s.lines >= {min_lines} AND s.fuzzy::numeric / s.lines > {fuzzy_link_share_max}

-- name: rule_unknown_product
-- What the line items' product foreign key guarded (dropped for the silver step's speed, migration 0022).
WITH t AS (SELECT * FROM {batch}),
s AS (
    SELECT count(*) AS missing, min(l.txn_id) AS first_txn
    FROM silver.line_items l
    WHERE l.txn_id IN (SELECT txn_id FROM t) AND l.product_key IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM silver.products p WHERE p.product_key = l.product_key)
)
SELECT 'recent line items' AS key,
       s.missing || ' lines link to no product (first in silver transaction ' || s.first_txn || ')' AS detail,
       s.missing AS unexpected
FROM s
WHERE s.missing > 0

-- name: rule_orphan_rows
-- What the foreign keys line items -> transactions and transactions -> stores guarded (dropped for the silver
-- step's speed, migration 0024): a line item from the window's first transaction on whose transaction is gone,
-- a recent transaction whose store is missing.
WITH t AS (SELECT * FROM {batch}),
lines AS (
    SELECT count(*) AS missing, min(l.txn_id) AS first_txn
    FROM silver.line_items l
    WHERE l.txn_id >= (SELECT min(txn_id) FROM t)
      AND NOT EXISTS (SELECT 1 FROM silver.transactions x WHERE x.txn_id = l.txn_id)
),
stores AS (
    SELECT count(*) AS missing, min(t.store_id) AS first_store
    FROM t WHERE NOT EXISTS (SELECT 1 FROM silver.stores s WHERE s.store_id = t.store_id)
)
SELECT 'recent line items and transactions' AS key,
       lines.missing || ' line items without their transaction (first: silver transaction '
       || coalesce(lines.first_txn::text, '-') || '), ' || stores.missing
       || ' transactions without their store (first: ' || coalesce(stores.first_store, '-') || ')' AS detail,
       lines.missing + stores.missing AS unexpected
FROM lines, stores
WHERE lines.missing + stores.missing > 0

-- name: rule_gold_totals_sales_by_store_day
-- Compared only while the view is current (its watermark is silver's version, read in the same snapshot):
-- any difference then is a wrong total, never a refresh still to come.
WITH g AS (SELECT * FROM {batch}),
current_view AS (
    SELECT 1 FROM ops.gold_refresh_state s, ops.watermarks w
    WHERE s.view_name = 'gold.sales_by_store_day' AND w.name = 'silver' AND s.watermark >= w.version
),
silver_side AS (
    SELECT t.store_id, (t.ts AT TIME ZONE 'UTC')::date AS day, count(*)::bigint AS orders,
           sum(t.item_count)::bigint AS line_items, sum(t.total_amount) AS revenue
    FROM silver.transactions t
    GROUP BY 1, 2
)
SELECT coalesce(g.store_id, s.store_id) || ' ' || coalesce(g.day, s.day) AS key,
       'gold orders/lines/revenue ' || coalesce(g.orders || '/' || g.line_items || '/' || g.revenue, 'missing')
       || ', silver ' || coalesce(s.orders || '/' || s.line_items || '/' || s.revenue, 'missing') AS detail
FROM g FULL JOIN silver_side s ON s.store_id = g.store_id AND s.day = g.day
WHERE EXISTS (SELECT 1 FROM current_view)
  AND (g.orders, g.line_items, g.revenue) IS DISTINCT FROM (s.orders, s.line_items, s.revenue)

-- name: rule_gold_freshness
-- A view is stale when silver moved past its watermark and the view was last known current (refreshed, or
-- skipped because silver had not moved) longer ago than the allowed staleness.
WITH state AS (SELECT * FROM {batch}),
silver AS (SELECT version FROM ops.watermarks WHERE name = 'silver'),
behind AS (
    SELECT v.view_name, st.watermark, w.version,
           coalesce((SELECT g.finished_at FROM ops.gold_refresh_log g
                     WHERE g.view_name = v.view_name
                       AND g.status IN ('refreshed', 'skipped') AND g.watermark IS NOT NULL
                     ORDER BY g.started_at DESC LIMIT 1),
                    (SELECT min(t.processed_at) FROM silver.transactions t)) AS current_at
    FROM ops.gold_relations v
    CROSS JOIN silver w
    LEFT JOIN state st ON st.view_name = v.view_name
    WHERE w.version > coalesce(st.watermark, 0)
)
SELECT view_name AS key,
       'at silver version ' || coalesce(watermark::text, 'none') || ' of ' || version
       || '; last current ' || coalesce(current_at::text, 'never') AS detail
FROM behind
WHERE current_at IS NULL OR current_at < now() - make_interval(secs => {gold_max_staleness_s})

-- name: gold_views_present
SELECT view_name FROM ops.gold_relations ORDER BY 1;

-- name: quality_run_insert
INSERT INTO ops.quality_runs (suite, started_at, finished_at, window_start, success, checks, failed, errors,
                              duration_ms)
VALUES (%(suite)s, %(started_at)s, %(finished_at)s, %(window_start)s, %(success)s, %(checks)s, %(failed)s,
        %(errors)s, %(duration_ms)s)
RETURNING id;

-- name: quality_result_insert
INSERT INTO ops.quality_results (run_id, expectation, rule, subject, severity, success, observed_value,
                                 unexpected_count, failing_keys, error)
VALUES (%(run_id)s, %(expectation)s, %(rule)s, %(subject)s, %(severity)s, %(success)s, %(observed_value)s,
        %(unexpected_count)s, %(failing_keys)s, %(error)s);

-- name: quality_prune
WITH runs AS (DELETE FROM ops.quality_runs WHERE started_at < now() - make_interval(days => %(days)s))
DELETE FROM ops.alerts WHERE resolved_at < now() - make_interval(days => %(days)s);

-- name: insert_transaction_warnings
INSERT INTO silver.transaction_warnings (txn_id, rule, detail)
SELECT * FROM unnest(%(txn_ids)s::bigint[], %(rules)s::text[], %(details)s::text[])
ON CONFLICT DO NOTHING;

-- name: alert_upsert
-- Opens an alert, or updates the open one of the same (rule, subject); `opened` says which.
INSERT INTO ops.alerts (rule, subject, severity, message, details)
VALUES (%(rule)s, %(subject)s, %(severity)s, %(message)s, %(details)s)
ON CONFLICT (rule, subject) WHERE resolved_at IS NULL DO UPDATE
SET last_seen = now(), count = ops.alerts.count + 1, severity = EXCLUDED.severity,
    message = EXCLUDED.message, details = EXCLUDED.details,
    notified_status = CASE WHEN ops.alerts.severity = EXCLUDED.severity THEN ops.alerts.notified_status END
RETURNING id, (xmax = 0) AS opened;

-- name: alert_resolve
UPDATE ops.alerts SET resolved_at = now()
WHERE rule = %(rule)s AND subject = %(subject)s AND resolved_at IS NULL
RETURNING id;

-- name: alerts_resolve_orphans
-- Open alerts of a suite's rules whose check no longer runs (e.g. the gold view is gone).
UPDATE ops.alerts SET resolved_at = now()
WHERE resolved_at IS NULL AND rule = ANY (%(rules)s::text[])
  AND (rule, subject) NOT IN (SELECT * FROM unnest(%(check_rules)s::text[], %(check_subjects)s::text[]))
RETURNING rule, subject;

-- name: alerts_active_counts
SELECT rule, severity, count(*) AS active FROM ops.alerts WHERE resolved_at IS NULL GROUP BY rule, severity;

-- name: alerts_list
SELECT id, rule, subject, severity, message, details, first_seen, last_seen, count, resolved_at
FROM ops.alerts
WHERE (%(status)s = 'all' OR (%(status)s = 'active') = (resolved_at IS NULL))
  AND (%(rule)s::text IS NULL OR rule = %(rule)s)
ORDER BY (resolved_at IS NULL) DESC, last_seen DESC, id DESC
LIMIT %(limit)s;

-- name: alerts_to_notify
-- Firing alerts not yet sent (or sent longer ago than the repeat interval), and resolutions of sent ones.
SELECT id, rule, subject, severity, message, details, first_seen, last_seen, count, resolved_at
FROM ops.alerts
WHERE (resolved_at IS NULL
       AND (notified_status IS DISTINCT FROM 'firing' OR notified_at < now() - make_interval(secs => %(repeat_s)s)))
   OR (resolved_at IS NOT NULL AND notified_status = 'firing')
ORDER BY id
LIMIT 200;

-- name: alerts_mark_notified
-- Only where the alert is still in the state that was sent (a resolution that raced the POST stays pending).
UPDATE ops.alerts a SET notified_status = s.status, notified_at = now()
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[]) AS s (id, status)
WHERE a.id = s.id AND s.status = CASE WHEN a.resolved_at IS NULL THEN 'firing' ELSE 'resolved' END;
