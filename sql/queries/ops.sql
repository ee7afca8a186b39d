-- Queries of the ops schema shared by jobs and the CLI.

-- name: job_run_start
INSERT INTO ops.job_runs (job_name, started_at, status) VALUES (%(job)s, now(), 'running') RETURNING id;

-- name: job_run_finish
UPDATE ops.job_runs SET finished_at = now(), status = %(status)s, error = %(error)s, details = %(details)s
WHERE id = %(id)s;

-- name: layer_counts
SELECT (SELECT count(*) FROM bronze.transactions)                    AS bronze,
       (SELECT count(*) FROM bronze.pending)                        AS bronze_pending,
       (SELECT count(*) FROM silver.transactions)                    AS silver_transactions,
       (SELECT count(*) FROM silver.line_items)                      AS silver_line_items,
       (SELECT count(*) FROM silver.quarantine)                      AS quarantined,
       (SELECT count(*) FROM ops.dead_letters)                       AS dead_letters,
       (SELECT count(*) FROM gold.sales_by_store_day)                AS gold_sales_rows,
       (SELECT coalesce(sum(orders), 0) FROM gold.sales_by_store_day) AS gold_orders;

-- name: last_job_details
SELECT details FROM ops.job_runs
WHERE job_name = %(job)s AND status = 'succeeded'
ORDER BY id DESC LIMIT 1;

-- name: job_last_runs
SELECT DISTINCT ON (job_name) job_name, started_at, finished_at, status, error
FROM ops.job_runs
ORDER BY job_name, started_at DESC, id DESC;

-- name: purge_processed_bronze
-- The partitions that are not one day's (transactions_default, transactions_legacy) lose their old rows
-- one by one: processed rows only, oldest first, never one still needed by an open quarantine entry (its replay
-- reads the bronze payload). Deleted through the parent, whose trigger forgets their hashes.
DELETE FROM bronze.transactions
WHERE received_at < %(before)s AND (id, received_at) IN (
    SELECT b.id, b.received_at
    FROM {part} b
    WHERE b.received_at < %(before)s
      AND NOT EXISTS (SELECT 1 FROM bronze.pending p WHERE p.bronze_id = b.id)
      AND NOT EXISTS (SELECT 1 FROM silver.quarantine z WHERE z.bronze_id = b.id AND z.replayed_at IS NULL)
    ORDER BY b.id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
);

-- name: purge_refresh_log
DELETE FROM ops.gold_refresh_log
WHERE id IN (
    SELECT id FROM ops.gold_refresh_log
    WHERE started_at < now() - make_interval(days => %(days)s)
    ORDER BY id
    LIMIT %(batch)s
);

-- name: purge_job_runs
DELETE FROM ops.job_runs
WHERE id IN (
    SELECT id FROM ops.job_runs
    WHERE started_at < now() - make_interval(days => %(days)s) AND status <> 'running'
    ORDER BY id
    LIMIT %(batch)s
);

-- name: bronze_partitions
-- The partitions of bronze.transactions by name (transactions_YYYYMMDD, transactions_default, transactions_legacy).
SELECT c.relname
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'bronze.transactions'::regclass
ORDER BY c.relname;

-- name: bronze_default_rows
-- Rows whose day had no partition when they landed.
SELECT count(*) FROM bronze.transactions_default;

-- name: bronze_create_day_partitions
SELECT day, status FROM bronze.create_day_partitions(%(days_ahead)s);

-- name: bronze_drop_day
SELECT bronze.drop_day(%(day)s);

-- name: bronze_drop_legacy
SELECT bronze.drop_legacy();
