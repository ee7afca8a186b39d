-- Bronze owns its consumer: each partition's row in ops.stream_offsets gets an epoch, bumped by the worker
-- that is assigned the partition before it fetches anything. A landing transaction moves next_offset only
-- while the epoch (and the offset it expects) are still the ones it read: a worker that lost the partition
-- can never land for it again (fenced). owner names the worker process that holds the current epoch.

ALTER TABLE ops.stream_offsets
    ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    ADD COLUMN owner text;

COMMENT ON COLUMN ops.stream_offsets.next_offset IS 'The next offset to land: every record before it is in bronze or the dead letters';
COMMENT ON COLUMN ops.stream_offsets.epoch IS 'Bumped on every assignment; a landing whose epoch is not this one is refused (fenced)';
