-- Queries of the ops schema shared by jobs and the CLI.

-- name: job_run_start
INSERT INTO ops.job_runs (job_name, started_at, status) VALUES (%(job)s, now(), 'running') RETURNING id;

-- name: job_run_finish
UPDATE ops.job_runs SET finished_at = now(), status = %(status)s, error = %(error)s, details = %(details)s
WHERE id = %(id)s;

-- name: layer_counts
SELECT (SELECT count(*) FROM bronze.transactions)                    AS bronze,
       (SELECT count(*) FROM bronze.transactions WHERE processed_at IS NULL) AS bronze_pending,
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
