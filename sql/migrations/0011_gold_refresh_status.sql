-- Which scheduler replica wrote each refresh log row, and a freshness view analysts can read.

ALTER TABLE ops.gold_refresh_log ADD COLUMN runner text;

-- One row per refreshed gold view: when it was last refreshed, the silver watermark it reflects, and
-- whether silver has moved since. A plain view owned by the migrating role, so scout_reader sees these
-- columns without any access to ops.
CREATE VIEW gold.refresh_status AS
SELECT s.view_name,
       s.last_refresh_at,
       s.rows,
       s.duration_ms,
       s.watermark                       AS refreshed_at_silver_version,
       w.version                         AS silver_version,
       w.updated_at                      AS silver_updated_at,
       s.watermark >= w.version          AS current,
       l.status                          AS last_attempt_status,
       l.reason                          AS last_attempt_reason,
       l.finished_at                     AS last_attempt_at
FROM ops.gold_refresh_state s
CROSS JOIN (SELECT version, updated_at FROM ops.watermarks WHERE name = 'silver') w
LEFT JOIN LATERAL (
    SELECT status, reason, finished_at
    FROM ops.gold_refresh_log g
    WHERE g.view_name = s.view_name
    ORDER BY g.started_at DESC, g.id DESC
    LIMIT 1
) l ON true;

GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader, scout_pipeline;
