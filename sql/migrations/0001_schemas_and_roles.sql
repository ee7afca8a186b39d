-- Schemas of the medallion layers and the three group roles.
-- Roles are cluster-wide and NOLOGIN: a deployment grants them to its login users
-- (e.g. GRANT scout_pipeline TO scout_worker_user).
CREATE SCHEMA IF NOT EXISTS bronze;
CREATE SCHEMA IF NOT EXISTS silver;
CREATE SCHEMA IF NOT EXISTS gold;
CREATE SCHEMA IF NOT EXISTS ops;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scout_ingest') THEN
        CREATE ROLE scout_ingest NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scout_pipeline') THEN
        CREATE ROLE scout_pipeline NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scout_reader') THEN
        CREATE ROLE scout_reader NOLOGIN;
    END IF;
END
$$;

-- Nobody but the owner creates objects in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
