-- Bronze by day: bronze.transactions becomes a table partitioned by range of received_at (the API's receive
-- time, in the envelope, so known before the row is written, and the same for every redelivery of a record),
-- one partition per UTC day, plus a default partition for anything outside the days created. Retention then
-- drops whole days (bronze.drop_day) instead of deleting rows one by one.
--
-- PostgreSQL requires the partition key in a partitioned table's unique constraints, so:
-- * event_hash stays unique across every day through bronze.event_hashes, a narrow unpartitioned table that
--   the landing statement's trigger fills (a duplicate of any day fails the landing's COPY, and the landing's
--   INSERT skips hashes already there); a bronze delete takes its hashes along, a dropped day too.
-- * the primary key is (id, received_at); ids still come from the one identity sequence (GENERATED ALWAYS).
--
-- Converting a bronze that holds rows keeps them where they are: the old table becomes the partition
-- bronze.transactions_legacy (received_at up to the end of today, UTC), attached after a validated CHECK so
-- PostgreSQL does not scan it again; ids and the sequence are kept. The work that grows with the table is one
-- read of event_hash (into bronze.event_hashes and its index) and one index build on (id, received_at); no row
-- is copied. docs/RELIABILITY.md (Upgrading to bronze by day) has the figures.

-- 1. The hashes of every bronze row, unique.
CREATE TABLE bronze.event_hashes (
    event_hash char(64) NOT NULL
);
INSERT INTO bronze.event_hashes (event_hash) SELECT event_hash FROM bronze.transactions;
ALTER TABLE bronze.event_hashes ADD CONSTRAINT event_hashes_pkey PRIMARY KEY (event_hash);
COMMENT ON TABLE bronze.event_hashes IS
    'The event_hash of every bronze row, of every day: keeps it unique across partitions';

-- 2. The silver queue carries each row's received_at, so that silver's claim reads one partition per row.
ALTER TABLE bronze.pending ADD COLUMN received_at timestamptz;
UPDATE bronze.pending p SET received_at = b.received_at FROM bronze.transactions b WHERE b.id = p.bronze_id;
DELETE FROM bronze.pending WHERE received_at IS NULL;  -- an entry without its row: nothing to process
ALTER TABLE bronze.pending ALTER COLUMN received_at SET NOT NULL;
COMMENT ON COLUMN bronze.pending.received_at IS 'The bronze row''s received_at: its partition';

CREATE OR REPLACE FUNCTION bronze.queue_for_silver() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO bronze.pending (bronze_id, received_at) SELECT id, received_at FROM landed;
    RETURN NULL;
END
$$;

-- 3. The old table steps aside, keeping its rows and the sequence's position.
DROP TRIGGER transactions_queue_for_silver ON bronze.transactions;
ALTER TABLE bronze.transactions RENAME TO transactions_legacy;
ALTER TABLE bronze.transactions_legacy RENAME CONSTRAINT transactions_pkey TO transactions_legacy_id_key;
ALTER INDEX bronze.transactions_received_at_idx RENAME TO transactions_legacy_received_at_idx;
CREATE TEMP TABLE bronze_sequence ON COMMIT DROP AS
SELECT last_value, is_called FROM bronze.transactions_id_seq;
ALTER TABLE bronze.transactions_legacy ALTER COLUMN id DROP IDENTITY;  -- a partition has no identity of its own
ALTER TABLE bronze.transactions_legacy DROP CONSTRAINT transactions_event_hash_key;

-- 4. The partitioned table, its indexes and its default partition.
CREATE TABLE bronze.transactions (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    event_hash      char(64)    NOT NULL,
    source          text        NOT NULL CONSTRAINT transactions_source_check
                                CHECK (source IN ('api', 'bulk', 'simulator')),
    store_id        text        NOT NULL,
    transaction_id  text        NOT NULL,
    payload         jsonb       NOT NULL,
    received_at     timestamptz NOT NULL,
    landed_at       timestamptz NOT NULL DEFAULT now(),
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    CONSTRAINT transactions_pkey PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
COMMENT ON TABLE bronze.transactions IS
    'Every event as it arrived, one partition per UTC day of received_at (bronze.create_day_partitions)';
SELECT setval('bronze.transactions_id_seq', last_value, is_called) FROM bronze_sequence;
CREATE INDEX transactions_received_at_idx ON bronze.transactions (received_at);
CREATE TABLE bronze.transactions_default PARTITION OF bronze.transactions DEFAULT;
COMMENT ON TABLE bronze.transactions_default IS
    'Rows whose day has no partition (scout verify and the bronze-partitions job report them)';

CREATE TRIGGER transactions_queue_for_silver
AFTER INSERT ON bronze.transactions
REFERENCING NEW TABLE AS landed
FOR EACH STATEMENT EXECUTE FUNCTION bronze.queue_for_silver();

-- Every landed row's hash, in the landing statement: a hash of any day already there fails the statement.
CREATE FUNCTION bronze.remember_hashes() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO bronze.event_hashes (event_hash) SELECT event_hash FROM landed;
    RETURN NULL;
END
$$;

CREATE TRIGGER transactions_remember_hashes
AFTER INSERT ON bronze.transactions
REFERENCING NEW TABLE AS landed
FOR EACH STATEMENT EXECUTE FUNCTION bronze.remember_hashes();

CREATE FUNCTION bronze.forget_hashes() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM bronze.event_hashes h USING gone WHERE h.event_hash = gone.event_hash;
    RETURN NULL;
END
$$;

CREATE TRIGGER transactions_forget_hashes
AFTER DELETE ON bronze.transactions
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION bronze.forget_hashes();

-- 5. The old rows become a partition: up to the end of today (UTC) or of their latest day.
DO $$
DECLARE
    upper_bound timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM bronze.transactions_legacy) THEN
        DROP TABLE bronze.transactions_legacy;
        RETURN;
    END IF;
    SELECT date_trunc('day', greatest(max(received_at), now()), 'UTC') + interval '1 day' INTO upper_bound
    FROM bronze.transactions_legacy;
    EXECUTE format('ALTER TABLE bronze.transactions_legacy ADD CONSTRAINT transactions_legacy_range '
                   'CHECK (received_at < %L) NOT VALID', upper_bound);
    ALTER TABLE bronze.transactions_legacy VALIDATE CONSTRAINT transactions_legacy_range;
    CREATE UNIQUE INDEX transactions_legacy_pkey_new ON bronze.transactions_legacy (id, received_at);
    ALTER TABLE bronze.transactions_legacy DROP CONSTRAINT transactions_legacy_id_key;
    ALTER INDEX bronze.transactions_legacy_pkey_new RENAME TO transactions_legacy_pkey;
    ALTER TABLE bronze.transactions_legacy ALTER COLUMN id SET NOT NULL;
    -- Written through the parent; the retention job reads it by name (its old rows go one by one).
    REVOKE ALL ON bronze.transactions_legacy FROM scout_ingest, scout_pipeline, scout_reader;
    GRANT SELECT, UPDATE ON bronze.transactions_legacy TO scout_pipeline;
    EXECUTE format('ALTER TABLE bronze.transactions ATTACH PARTITION bronze.transactions_legacy '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', upper_bound);
    ALTER TABLE bronze.transactions_legacy DROP CONSTRAINT transactions_legacy_range;
    COMMENT ON TABLE bronze.transactions_legacy IS
        'Bronze rows from before partitioning by day; retention deletes its old rows one by one';
END
$$;

-- 6. Partitions ahead and days dropped, by the scheduler's role, which owns no table: both run as the owner.
-- The partitions of the days from today (UTC) to today + days_ahead that do not exist yet; a day some
-- partition already covers (the legacy one) is skipped, a day with rows in the default partition is reported
-- (status 'default holds rows'), never forced. Creating a partition locks bronze.transactions exclusively for a
-- moment; it waits at most lock_timeout for the landings in progress (status 'busy': the next run does it).
CREATE FUNCTION bronze.create_day_partitions(days_ahead integer)
RETURNS TABLE (day date, status text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    first_day date := (now() AT TIME ZONE 'UTC')::date;
    part_name text;
BEGIN
    FOR day IN SELECT d::date FROM generate_series(first_day, first_day + days_ahead, interval '1 day') AS d LOOP
        part_name := 'transactions_' || to_char(day, 'YYYYMMDD');
        IF to_regclass('bronze.' || part_name) IS NOT NULL THEN
            CONTINUE;
        END IF;
        BEGIN
            EXECUTE format('CREATE TABLE bronze.%I PARTITION OF bronze.transactions FOR VALUES FROM (%L) TO (%L)',
                           part_name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            status := 'created';
        EXCEPTION
            WHEN invalid_object_definition THEN  -- overlaps a partition (bronze.transactions_legacy)
                CONTINUE;
            WHEN check_violation THEN
                status := 'default holds rows';
            WHEN lock_not_available THEN  -- landings held bronze for lock_timeout: the next run creates it
                status := 'busy';
        END;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Detach and drop one day's partition (bronze.transactions_YYYYMMDD) unless a row of it is still needed: queued
-- for silver (bronze.pending) or the source of an open quarantine entry (its replay reads the payload).
-- Returns 'dropped', or why it was kept. The day's hashes go with it (the dedupe window is bronze's).
CREATE FUNCTION bronze.drop_day(day date)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    part text := 'bronze.' || quote_ident('transactions_' || to_char(day, 'YYYYMMDD'));
    needed_sql text;
    needed text;
BEGIN
    IF to_regclass(part) IS NULL THEN
        RETURN 'no partition';
    END IF;
    needed_sql := format('SELECT CASE WHEN EXISTS (SELECT 1 FROM bronze.pending p JOIN %1$s b ON b.id = p.bronze_id) '
                         'THEN %2$L WHEN EXISTS (SELECT 1 FROM silver.quarantine z JOIN %1$s b ON b.id = z.bronze_id '
                         'WHERE z.replayed_at IS NULL) THEN %3$L END',
                         part, 'kept: queued for silver', 'kept: open quarantine');
    EXECUTE needed_sql INTO needed;
    IF needed IS NOT NULL THEN
        RETURN needed;
    END IF;
    BEGIN
        -- The hashes first, without the exclusive lock: silver's claims (which plan over every partition) wait
        -- only for the detach, not for this delete.
        EXECUTE format('DELETE FROM bronze.event_hashes h USING %s b WHERE h.event_hash = b.event_hash', part);
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', part);
        EXECUTE needed_sql INTO needed;  -- again under the lock: a late landing of that day, or a replay
        IF needed IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'SCB01', MESSAGE = needed;  -- undoes the hash delete
        END IF;
        EXECUTE format('ALTER TABLE bronze.transactions DETACH PARTITION %s', part);
        EXECUTE format('DROP TABLE %s', part);
    EXCEPTION
        WHEN SQLSTATE 'SCB01' THEN
            RETURN SQLERRM;
        WHEN lock_not_available THEN
            RETURN 'kept: busy (lock timeout), dropped on a later run';
    END;
    RETURN 'dropped';
END
$$;

-- The legacy partition goes once retention has deleted its last row: 'dropped', 'kept: it holds rows', or
-- 'no partition'.
CREATE FUNCTION bronze.drop_legacy()
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
BEGIN
    IF to_regclass('bronze.transactions_legacy') IS NULL THEN
        RETURN 'no partition';
    END IF;
    IF EXISTS (SELECT 1 FROM bronze.transactions_legacy) THEN
        RETURN 'kept: it holds rows';
    END IF;
    LOCK TABLE bronze.transactions_legacy IN ACCESS EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM bronze.transactions_legacy) THEN
        RETURN 'kept: it holds rows';
    END IF;
    ALTER TABLE bronze.transactions DETACH PARTITION bronze.transactions_legacy;
    DROP TABLE bronze.transactions_legacy;
    RETURN 'dropped';
EXCEPTION
    WHEN lock_not_available THEN
        RETURN 'kept: busy (lock timeout), dropped on a later run';
END
$$;

REVOKE ALL ON FUNCTION bronze.create_day_partitions(integer), bronze.drop_day(date), bronze.drop_legacy()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bronze.create_day_partitions(integer), bronze.drop_day(date), bronze.drop_legacy()
    TO scout_pipeline;

GRANT SELECT, INSERT ON bronze.transactions, bronze.event_hashes TO scout_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON bronze.transactions, bronze.event_hashes TO scout_pipeline;
GRANT SELECT, USAGE ON SEQUENCE bronze.transactions_id_seq TO scout_pipeline;
-- Read by name: verify and the bronze-partitions job count its rows, retention deletes its old ones (through the
-- parent, so that their hashes go too).
GRANT SELECT, UPDATE ON bronze.transactions_default TO scout_pipeline;
