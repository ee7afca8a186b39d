-- Silver follows bronze through a narrow queue instead of rewriting it: every bronze row lands with an entry
-- in bronze.pending (its id), in the landing transaction, by a statement trigger over the rows just inserted
-- (COPY and INSERT alike, so no landing path can forget it). The silver step claims entries with
-- FOR UPDATE SKIP LOCKED and deletes them in its own transaction; the wide jsonb bronze row is never updated
-- again (before: UPDATE … SET processed_at, a non-HOT rewrite of each row and its index entries).
-- A bronze row is processed when it has no entry; a quarantine replay adds its entry back.

CREATE TABLE bronze.pending (
    bronze_id bigint PRIMARY KEY
);
COMMENT ON TABLE bronze.pending IS 'Bronze rows silver has still to process (the silver backlog), by bronze id';
-- A queue: many short-lived rows; vacuum it early so claims scan few dead entries.
ALTER TABLE bronze.pending SET (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 10000,
                                autovacuum_vacuum_insert_scale_factor = 0.0,
                                autovacuum_vacuum_insert_threshold = 100000);

CREATE FUNCTION bronze.queue_for_silver() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO bronze.pending (bronze_id) SELECT id FROM landed;
    RETURN NULL;
END
$$;

CREATE TRIGGER transactions_queue_for_silver
AFTER INSERT ON bronze.transactions
REFERENCING NEW TABLE AS landed
FOR EACH STATEMENT EXECUTE FUNCTION bronze.queue_for_silver();

INSERT INTO bronze.pending (bronze_id) SELECT id FROM bronze.transactions WHERE processed_at IS NULL;

DROP INDEX bronze.transactions_unprocessed_idx;
ALTER TABLE bronze.transactions DROP COLUMN processed_at;

GRANT SELECT, INSERT ON bronze.pending TO scout_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON bronze.pending TO scout_pipeline;
