-- Queries of the bronze landing step (streams/bronze).

-- name: bronze_stage_create
CREATE TEMP TABLE IF NOT EXISTS bronze_stage (
    event_hash      char(64),
    source          text,
    store_id        text,
    transaction_id  text,
    payload         jsonb,
    received_at     timestamptz,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint
) ON COMMIT DELETE ROWS;

-- name: bronze_stage_copy
COPY bronze_stage (event_hash, source, store_id, transaction_id, payload, received_at,
                   kafka_topic, kafka_partition, kafka_offset) FROM STDIN;

-- name: bronze_copy
COPY bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at,
                          kafka_topic, kafka_partition, kafka_offset) FROM STDIN;

-- name: bronze_insert_from_stage
-- The first record of each event not landed yet, in offset order. event_hash is unique across every day through
-- bronze.event_hashes (the partition key would have to be in a unique index of bronze.transactions): the hashes
-- already there are skipped here, and the statement's trigger adds the new ones, so a concurrent landing of the
-- same event fails this statement rather than landing it twice (the row-by-row retry then skips it).
INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at,
                                 kafka_topic, kafka_partition, kafka_offset)
SELECT event_hash, source, store_id, transaction_id, payload, received_at,
       kafka_topic, kafka_partition, kafka_offset
FROM (
    SELECT DISTINCT ON (s.event_hash) s.*
    FROM bronze_stage s
    WHERE NOT EXISTS (SELECT 1 FROM bronze.event_hashes h WHERE h.event_hash = s.event_hash)
    ORDER BY s.event_hash, s.kafka_partition, s.kafka_offset
) AS fresh
ORDER BY kafka_partition, kafka_offset;

-- name: dead_letter_insert
INSERT INTO ops.dead_letters (kafka_topic, kafka_partition, kafka_offset, message_key, raw, reason)
VALUES (%(topic)s, %(partition)s, %(offset)s, %(key)s, %(raw)s, %(reason)s)
ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING;

-- name: stream_offsets_get
SELECT kafka_partition, next_offset, epoch
FROM ops.stream_offsets
WHERE kafka_topic = %(topic)s AND kafka_partition = ANY(%(partitions)s::int[]);

-- name: stream_offsets_create
-- A partition never landed before starts where the caller says (the group's committed offset on a first
-- start, else the broker's earliest offset).
INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset)
SELECT %(topic)s, p, o FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[]) AS t (p, o)
ON CONFLICT (kafka_topic, kafka_partition) DO NOTHING;

-- name: stream_offsets_claim
-- On assignment: take the partitions (in one lock order, so that claims and landings cannot deadlock) and
-- bump their epoch; every landing of an earlier epoch is refused from now on.
WITH locked AS (
    SELECT kafka_topic, kafka_partition
    FROM ops.stream_offsets
    WHERE kafka_topic = %(topic)s AND kafka_partition = ANY(%(partitions)s::int[])
    ORDER BY kafka_partition
    FOR UPDATE
)
UPDATE ops.stream_offsets AS s
SET epoch = s.epoch + 1, owner = %(owner)s, updated_at = now()
FROM locked
WHERE s.kafka_topic = locked.kafka_topic AND s.kafka_partition = locked.kafka_partition
RETURNING s.kafka_partition, s.next_offset, s.epoch;

-- name: stream_offsets_fence
-- At the end of a landing transaction: lock the batch's partitions (one order) and read what the landing must
-- still match.
SELECT kafka_partition, next_offset, epoch
FROM ops.stream_offsets
WHERE kafka_topic = %(topic)s AND kafka_partition = ANY(%(partitions)s::int[])
ORDER BY kafka_partition
FOR UPDATE;

-- name: stream_offsets_advance
-- Last statement of a landing transaction, after the fence check: the partitions' new next offsets.
UPDATE ops.stream_offsets AS s
SET next_offset = t.o, updated_at = now()
FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[]) AS t (p, o)
WHERE s.kafka_topic = %(topic)s AND s.kafka_partition = t.p;

-- name: stream_offsets_reset
-- `scout bronze reset-offsets`: the topic was recreated on purpose (or an in-memory broker started empty);
-- its partitions start over at the offsets given, under a new epoch.
UPDATE ops.stream_offsets AS s
SET next_offset = t.o, epoch = s.epoch + 1, owner = NULL, updated_at = now()
FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[]) AS t (p, o)
WHERE s.kafka_topic = %(topic)s AND s.kafka_partition = t.p;
