-- Monitoring views for dashboards and on-call, in their own schema. They are plain views owned by the
-- migrating role, so they run with its rights: scout_reader reads these figures with no access to
-- bronze, silver or ops. Minutes are truncated in UTC whatever the session's time zone. The per-minute
-- views cover the last 7 days, read through the indexes on received_at, processed_at and created_at: a
-- dashboard refreshing every 30 s never scans the whole history.
CREATE SCHEMA IF NOT EXISTS monitor;

-- Rows per minute through each stage: received by the API (bronze.received_at), landed in bronze
-- (landed_at), written to silver (processed_at) and quarantined (created_at). A row lands after it is
-- received, so bronze is read once, by received_at.
CREATE VIEW monitor.v_pipeline_throughput AS
WITH bronze_rows AS (
    SELECT received_at, landed_at
    FROM bronze.transactions
    WHERE received_at >= now() - interval '7 days'
),
events AS (
    SELECT date_trunc('minute', received_at, 'UTC') AS minute,
           1 AS received, 0 AS landed, 0 AS silvered, 0 AS quarantined
    FROM bronze_rows
    UNION ALL
    SELECT date_trunc('minute', landed_at, 'UTC'), 0, 1, 0, 0
    FROM bronze_rows
    UNION ALL
    SELECT date_trunc('minute', processed_at, 'UTC'), 0, 0, 1, 0
    FROM silver.transactions
    WHERE processed_at >= now() - interval '7 days'
    UNION ALL
    SELECT date_trunc('minute', created_at, 'UTC'), 0, 0, 0, 1
    FROM silver.quarantine
    WHERE created_at >= now() - interval '7 days'
)
SELECT minute,
       sum(received)::bigint    AS received,
       sum(landed)::bigint      AS landed,
       sum(silvered)::bigint    AS silvered,
       sum(quarantined)::bigint AS quarantined
FROM events
GROUP BY minute;

-- Bronze received -> silver processed, in seconds, per minute of processing (the last 7 days).
CREATE VIEW monitor.v_ingest_latency AS
SELECT date_trunc('minute', processed_at, 'UTC') AS minute,
       count(*)::bigint AS transactions,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
           AS p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
           AS p95_seconds,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at))
           AS p99_seconds,
       max(extract(epoch FROM processed_at - received_at))::double precision AS max_seconds
FROM silver.transactions
WHERE processed_at >= now() - interval '7 days'
GROUP BY 1;

-- One row per gold view the refresh job has seen: its last refresh, how old that is, its rows, and the
-- latest attempt, skip and failure from the refresh log.
CREATE VIEW monitor.v_gold_freshness AS
WITH views AS (
    SELECT view_name FROM ops.gold_refresh_state
    UNION
    SELECT DISTINCT view_name FROM ops.gold_refresh_log
)
SELECT v.view_name,
       s.last_refresh_at,
       extract(epoch FROM now() - s.last_refresh_at)::double precision AS age_seconds,
       s.rows,
       s.duration_ms                                                    AS last_duration_ms,
       s.watermark >= w.version                                         AS current,
       a.status                                                         AS last_attempt_status,
       a.finished_at                                                    AS last_attempt_at,
       k.reason                                                         AS last_skip_reason,
       k.finished_at                                                    AS last_skipped_at,
       f.reason                                                         AS last_failure_reason,
       f.finished_at                                                    AS last_failed_at
FROM views v
LEFT JOIN ops.gold_refresh_state s ON s.view_name = v.view_name
CROSS JOIN (SELECT version FROM ops.watermarks WHERE name = 'silver') w
LEFT JOIN LATERAL (
    SELECT status, finished_at FROM ops.gold_refresh_log g
    WHERE g.view_name = v.view_name ORDER BY g.started_at DESC, g.id DESC LIMIT 1
) a ON true
LEFT JOIN LATERAL (
    SELECT reason, finished_at FROM ops.gold_refresh_log g
    WHERE g.view_name = v.view_name AND g.status = 'skipped' ORDER BY g.started_at DESC, g.id DESC LIMIT 1
) k ON true
LEFT JOIN LATERAL (
    SELECT reason, finished_at FROM ops.gold_refresh_log g
    WHERE g.view_name = v.view_name AND g.status = 'failed' ORDER BY g.started_at DESC, g.id DESC LIMIT 1
) f ON true;

-- Scheduled job runs per job (ops.job_runs): how many, how many failed, durations of finished runs.
CREATE VIEW monitor.v_etl_performance AS
SELECT job_name,
       count(*)::bigint                                              AS runs,
       count(*) FILTER (WHERE status = 'succeeded')::bigint          AS succeeded,
       count(*) FILTER (WHERE status = 'failed')::bigint             AS failures,
       count(*) FILTER (WHERE status = 'running')::bigint            AS running,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           FILTER (WHERE finished_at IS NOT NULL)                    AS p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           FILTER (WHERE finished_at IS NOT NULL)                    AS p95_seconds,
       max(started_at)                                               AS last_started_at,
       max(started_at) FILTER (WHERE status = 'failed')              AS last_failed_at
FROM ops.job_runs
GROUP BY job_name;

GRANT USAGE ON SCHEMA monitor TO scout_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA monitor TO scout_reader;
