-- Queries of `scout verify`: catalogue and ops facts, judged in scout/verify.

-- name: verify_server
SELECT current_setting('server_version') AS version, current_user AS login, current_database() AS database;

-- name: verify_roles
SELECT rolname AS role, rolsuper AS superuser, rolcreaterole AS createrole, rolcreatedb AS createdb
FROM pg_roles WHERE rolname = ANY(%(roles)s);

-- name: verify_relation_grants
-- Every relation of the medallion schemas, with what each Scout role may do to it (a partition is reached
-- through its parent: bronze.transactions' days are not listed).
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, r.rolname AS role,
       pg_get_userbyid(c.relowner) = r.rolname                               AS owns,
       has_table_privilege(r.oid, c.oid, 'SELECT')                           AS can_read,
       has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS can_write
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN pg_roles r
WHERE n.nspname IN ('bronze', 'silver', 'gold', 'ops') AND c.relkind IN ('r', 'p', 'v', 'm')
  AND NOT c.relispartition AND r.rolname = ANY(%(roles)s);

-- name: verify_schema_grants
SELECT n.nspname AS schema, r.rolname AS role,
       pg_get_userbyid(n.nspowner) = r.rolname     AS owns,
       has_schema_privilege(r.oid, n.oid, 'CREATE') AS can_create
FROM pg_namespace n CROSS JOIN pg_roles r
WHERE n.nspname IN ('public', 'bronze', 'silver', 'gold', 'ops') AND r.rolname = ANY(%(roles)s);

-- name: verify_gold_state
-- Per gold relation the refresh jobs maintain (materialized views, and plain views over the per-day
-- aggregates): populated?, its last refresh, the last attempt, and the silver watermark.
SELECT g.view_name,
       coalesce(m.ispopulated, true)       AS populated,
       s.last_refresh_at,
       s.rows,
       s.watermark,
       w.version                           AS silver_version,
       l.status                            AS last_status,
       l.reason                            AS last_reason,
       l.finished_at                       AS last_attempt_at,
       now()                               AS now
FROM ops.gold_relations g
LEFT JOIN pg_matviews m ON m.schemaname || '.' || m.matviewname = g.view_name
CROSS JOIN (SELECT version FROM ops.watermarks WHERE name = 'silver') w
LEFT JOIN ops.gold_refresh_state s ON s.view_name = g.view_name
LEFT JOIN LATERAL (
    SELECT status, reason, finished_at FROM ops.gold_refresh_log r
    WHERE r.view_name = g.view_name
    ORDER BY r.started_at DESC, r.id DESC
    LIMIT 1
) l ON true;

-- name: verify_silver_backlog
-- The oldest pending row by id (the silver queue's primary key), not a scan for min(received_at).
SELECT (SELECT count(*) FROM bronze.pending) AS pending,
       (SELECT p.received_at FROM bronze.pending p ORDER BY p.bronze_id LIMIT 1) AS oldest,
       now() AS now;

-- name: verify_job_runs
SELECT DISTINCT ON (job_name) job_name, started_at, finished_at, status, error
FROM ops.job_runs
ORDER BY job_name, started_at DESC, id DESC;

-- name: verify_open_alerts
SELECT rule, subject, severity, message, first_seen, last_seen, count, now() AS now
FROM ops.alerts WHERE resolved_at IS NULL
ORDER BY severity, first_seen;

-- name: verify_landed_offsets
SELECT kafka_partition, next_offset, extract(epoch FROM now() - updated_at)::double precision AS idle_s
FROM ops.stream_offsets WHERE kafka_topic = %(topic)s;

-- name: verify_bronze_partitions
-- Rows in bronze's default partition (their day had no partition), and whether tomorrow's (UTC) exists.
SELECT (SELECT count(*) FROM bronze.transactions_default) AS default_rows,
       (SELECT min(received_at) FROM bronze.transactions_default) AS oldest,
       (SELECT max(received_at) FROM bronze.transactions_default) AS newest,
       to_regclass('bronze.transactions_' || to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYYMMDD')) IS NOT NULL
           AS tomorrow;
