-- What the status page (GET /status, GET /v1/status) reads, all in the monitor schema so that it reads them
-- as scout_reader, like the dashboards:
--
-- * the per-minute figures as functions of where the window starts, so the status page asks for the last
--   15 minutes through the indexes on received_at, processed_at and created_at instead of grouping 7 days
--   (270-370 ms at 1M silver line items spread over a week, 2-4 ms for 15 minutes). The two 7-day views
--   become these functions from now() - 7 days: one definition for Grafana and the status page. The
--   functions run with their owner's rights (SECURITY DEFINER, like the views), so scout_reader may call
--   them without reading bronze or silver;
-- * v_gold_freshness found its views with a DISTINCT over the whole refresh log (one row per view and run
--   of the job, about a million after 14 days) and the last failure by walking every row of a view that
--   never failed: 400 ms. Now the logged view names are found by a skip scan of the log's index and the
--   last failure through a partial index: under 2 ms, same columns and rows;
-- * the landed offset per partition, open alerts and the last run of each job, which were only in ops.

CREATE FUNCTION monitor.pipeline_throughput(since timestamptz)
RETURNS TABLE (minute timestamptz, received bigint, landed bigint, silvered bigint, quarantined bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
WITH bronze_rows AS (
    SELECT received_at, landed_at
    FROM bronze.transactions
    WHERE received_at >= since
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
    WHERE processed_at >= since
    UNION ALL
    SELECT date_trunc('minute', created_at, 'UTC'), 0, 0, 0, 1
    FROM silver.quarantine
    WHERE created_at >= since
)
SELECT minute,
       sum(received)::bigint,
       sum(landed)::bigint,
       sum(silvered)::bigint,
       sum(quarantined)::bigint
FROM events
GROUP BY minute
$$;

CREATE FUNCTION monitor.ingest_latency(since timestamptz)
RETURNS TABLE (minute timestamptz, transactions bigint, p50_seconds double precision,
               p95_seconds double precision, p99_seconds double precision, max_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT date_trunc('minute', processed_at, 'UTC'),
       count(*)::bigint,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)),
       max(extract(epoch FROM processed_at - received_at))::double precision
FROM silver.transactions
WHERE processed_at >= since
GROUP BY 1
$$;

REVOKE EXECUTE ON FUNCTION monitor.pipeline_throughput(timestamptz), monitor.ingest_latency(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION monitor.pipeline_throughput(timestamptz), monitor.ingest_latency(timestamptz)
    TO scout_reader;

CREATE OR REPLACE VIEW monitor.v_pipeline_throughput AS
SELECT * FROM monitor.pipeline_throughput(now() - interval '7 days');

CREATE OR REPLACE VIEW monitor.v_ingest_latency AS
SELECT * FROM monitor.ingest_latency(now() - interval '7 days');

CREATE INDEX gold_refresh_log_failed_idx ON ops.gold_refresh_log (view_name, started_at DESC)
    WHERE status = 'failed';

CREATE OR REPLACE VIEW monitor.v_gold_freshness AS
WITH RECURSIVE logged AS (
    (SELECT view_name FROM ops.gold_refresh_log ORDER BY view_name LIMIT 1)
    UNION ALL
    SELECT (SELECT g.view_name FROM ops.gold_refresh_log g
            WHERE g.view_name > l.view_name ORDER BY g.view_name LIMIT 1)
    FROM logged l
    WHERE l.view_name IS NOT NULL
),
views AS (
    SELECT view_name FROM ops.gold_refresh_state
    UNION
    SELECT view_name FROM logged WHERE view_name IS NOT NULL
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

-- Bronze's landed offset per partition (what `scout bronze offsets` shows next to the broker's range).
CREATE VIEW monitor.v_stream_offsets AS
SELECT kafka_topic, kafka_partition, next_offset AS landed_offset, epoch, owner, updated_at
FROM ops.stream_offsets;

-- Open quality alerts (ops.alerts); the runbook section is named after the rule.
CREATE VIEW monitor.v_open_alerts AS
SELECT id, rule, subject, severity, message, first_seen, last_seen, count
FROM ops.alerts
WHERE resolved_at IS NULL;

-- The last run of each scheduled job, and its runs and failures over the last hour. Job names are found by
-- a skip scan of ops.job_runs' index: the table keeps 14 days of runs (hundreds of thousands of rows).
CREATE VIEW monitor.v_job_last_runs AS
WITH RECURSIVE names AS (
    (SELECT job_name FROM ops.job_runs ORDER BY job_name LIMIT 1)
    UNION ALL
    SELECT (SELECT r.job_name FROM ops.job_runs r WHERE r.job_name > n.job_name ORDER BY r.job_name LIMIT 1)
    FROM names n
    WHERE n.job_name IS NOT NULL
)
SELECT n.job_name, last.started_at, last.finished_at, last.status, last.error,
       extract(epoch FROM last.finished_at - last.started_at)::double precision AS duration_seconds,
       hour.runs AS runs_last_hour, hour.failures AS failures_last_hour
FROM names n
CROSS JOIN LATERAL (
    SELECT r.started_at, r.finished_at, r.status, r.error FROM ops.job_runs r
    WHERE r.job_name = n.job_name ORDER BY r.started_at DESC, r.id DESC LIMIT 1
) last
CROSS JOIN LATERAL (
    SELECT count(*)::bigint AS runs, count(*) FILTER (WHERE r.status = 'failed')::bigint AS failures
    FROM ops.job_runs r
    WHERE r.job_name = n.job_name AND r.started_at >= now() - interval '1 hour'
) hour
WHERE n.job_name IS NOT NULL;

GRANT SELECT ON monitor.v_stream_offsets, monitor.v_open_alerts, monitor.v_job_last_runs TO scout_reader;
