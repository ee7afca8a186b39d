-- Queries of the gold refresh job (jobs/gold).

-- name: silver_version
SELECT version FROM ops.watermarks WHERE name = 'silver';

-- name: gold_watermark
SELECT watermark FROM ops.gold_refresh_state WHERE view_name = %(view)s;

-- name: try_advisory_lock
SELECT pg_try_advisory_lock(hashtext(%(key)s));

-- name: advisory_unlock
SELECT pg_advisory_unlock(hashtext(%(key)s));

-- name: refresh_view
SELECT ops.refresh_materialized_view(%(view)s, %(concurrent)s);

-- name: upsert_gold_state
INSERT INTO ops.gold_refresh_state (view_name, watermark, last_refresh_at, rows, duration_ms)
VALUES (%(view)s, %(watermark)s, %(finished_at)s, %(rows)s, %(duration_ms)s)
ON CONFLICT (view_name) DO UPDATE
SET watermark = EXCLUDED.watermark, last_refresh_at = EXCLUDED.last_refresh_at,
    rows = EXCLUDED.rows, duration_ms = EXCLUDED.duration_ms;

-- name: input_watermarks
SELECT view_name, watermark FROM ops.gold_refresh_state WHERE view_name = ANY(%(views)s::text[]);

-- name: insert_refresh_log
INSERT INTO ops.gold_refresh_log (view_name, started_at, finished_at, status, reason, watermark, rows,
                                  duration_ms, runner)
VALUES (%(view)s, %(started_at)s, %(finished_at)s, %(status)s, %(reason)s, %(watermark)s, %(rows)s,
        %(duration_ms)s, %(runner)s);

-- name: refresh_aggregate
SELECT ops.refresh_gold_aggregate(%(aggregate)s, %(full)s);

-- name: aggregate_rows
SELECT ops.gold_aggregate_rows(%(aggregate)s);
