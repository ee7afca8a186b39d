-- The status page's figures (GET /v1/status): one statement, so one round trip and one snapshot, read as
-- scout_reader from the monitor schema the dashboards read.

-- name: status_snapshot
-- The last %(minutes)s UTC minutes (the current one included) of rows per layer and POST -> silver latency,
-- bronze's landed offset per partition of the topic, every gold view, open alerts (critical first) and the
-- last run of every job.
WITH window_start AS (
    SELECT date_trunc('minute', now(), 'UTC') - make_interval(mins => %(minutes)s - 1) AS since
)
SELECT now() AS as_of,
       (SELECT since FROM window_start) AS since,
       (SELECT coalesce(json_agg(t ORDER BY t.minute), '[]'::json)
        FROM monitor.pipeline_throughput((SELECT since FROM window_start)) t) AS throughput,
       (SELECT coalesce(json_agg(l ORDER BY l.minute), '[]'::json)
        FROM monitor.ingest_latency((SELECT since FROM window_start)) l) AS latency,
       (SELECT coalesce(json_agg(o ORDER BY o.kafka_partition), '[]'::json)
        FROM monitor.v_stream_offsets o WHERE o.kafka_topic = %(topic)s) AS offsets,
       (SELECT coalesce(json_agg(g ORDER BY g.view_name), '[]'::json)
        FROM monitor.v_gold_freshness g) AS gold,
       (SELECT coalesce(json_agg(a ORDER BY a.severity = 'critical' DESC, a.first_seen DESC, a.id DESC), '[]'::json)
        FROM (SELECT * FROM monitor.v_open_alerts ORDER BY severity = 'critical' DESC, first_seen DESC, id DESC
              LIMIT %(alerts)s) a) AS alerts,
       (SELECT count(*) FROM monitor.v_open_alerts) AS alerts_open,
       (SELECT coalesce(json_agg(j ORDER BY j.job_name), '[]'::json)
        FROM monitor.v_job_last_runs j) AS jobs;
