-- Least privilege. Objects are owned by the migrating user; the group roles get only what they need.
-- scout_ingest: bronze only.
GRANT USAGE ON SCHEMA bronze TO scout_ingest;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA bronze TO scout_ingest;

-- scout_pipeline: data in every layer, no DDL (it owns nothing).
GRANT USAGE ON SCHEMA bronze, silver, gold, ops TO scout_pipeline;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bronze, silver, ops TO scout_pipeline;
GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_pipeline;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA bronze, silver, ops TO scout_pipeline;

-- scout_reader: read gold (and, later, observability views) only.
GRANT USAGE ON SCHEMA gold TO scout_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA gold TO scout_reader;

-- REFRESH needs ownership in PostgreSQL 16; this owner-run function lets the pipeline role
-- refresh gold materialized views (and nothing else) without owning or altering them.
CREATE FUNCTION ops.refresh_materialized_view(view_name text, concurrent boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schema_part text := split_part(view_name, '.', 1);
    name_part   text := split_part(view_name, '.', 2);
BEGIN
    IF schema_part <> 'gold' OR NOT EXISTS (
        SELECT 1 FROM pg_matviews WHERE schemaname = schema_part AND matviewname = name_part
    ) THEN
        RAISE EXCEPTION 'not a gold materialized view: %', view_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF concurrent THEN
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I.%I', schema_part, name_part);
    ELSE
        EXECUTE format('REFRESH MATERIALIZED VIEW %I.%I', schema_part, name_part);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION ops.refresh_materialized_view(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops.refresh_materialized_view(text, boolean) TO scout_pipeline;
