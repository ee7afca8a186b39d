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
