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
INSERT INTO bronze.transactions (event_hash, source, store_id, transaction_id, payload, received_at,
                                 kafka_topic, kafka_partition, kafka_offset)
SELECT event_hash, source, store_id, transaction_id, payload, received_at,
       kafka_topic, kafka_partition, kafka_offset
FROM bronze_stage
ORDER BY kafka_partition, kafka_offset
ON CONFLICT (event_hash) DO NOTHING;

-- name: dead_letter_insert
INSERT INTO ops.dead_letters (kafka_topic, kafka_partition, kafka_offset, message_key, raw, reason)
VALUES (%(topic)s, %(partition)s, %(offset)s, %(key)s, %(raw)s, %(reason)s)
ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING;

-- name: stream_offsets_lock
-- The batch's partitions, locked in one order so that two workers landing them at once cannot deadlock.
SELECT kafka_partition, next_offset
FROM ops.stream_offsets
WHERE kafka_topic = %(topic)s AND kafka_partition = ANY(%(partitions)s::int[])
ORDER BY kafka_partition
FOR UPDATE;

-- name: stream_offsets_set
INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset)
SELECT %(topic)s, p, o FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[]) AS t (p, o)
ON CONFLICT (kafka_topic, kafka_partition)
DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
WHERE ops.stream_offsets.next_offset < EXCLUDED.next_offset;

-- name: stream_offsets_start
-- Where a partition never landed before starts: its first offset still on the broker.
INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset)
SELECT %(topic)s, p, o FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[]) AS t (p, o)
ON CONFLICT (kafka_topic, kafka_partition) DO NOTHING;

-- name: stream_offsets_get
SELECT kafka_partition, next_offset
FROM ops.stream_offsets
WHERE kafka_topic = %(topic)s AND kafka_partition = ANY(%(partitions)s::int[]);

-- name: stream_offsets_reset
-- The broker's end offset is behind what was landed: the topic was recreated. Start the partition over.
UPDATE ops.stream_offsets AS s
SET next_offset = t.o, updated_at = now()
FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[]) AS t (p, o)
WHERE s.kafka_topic = %(topic)s AND s.kafka_partition = t.p;
