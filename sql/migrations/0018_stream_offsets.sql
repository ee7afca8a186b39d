-- Where the bronze landing stands on each partition: the next offset after an unbroken run of offsets that
-- are in PostgreSQL (landed, recognised as duplicates, or dead-lettered). It moves in the same transaction
-- as the rows, so it never claims a record that is not here; the consumer group's committed offsets are
-- only where a worker starts reading, this table is what the agent checks every batch against.

CREATE TABLE ops.stream_offsets (
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    next_offset     bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kafka_topic, kafka_partition)
);

-- A database that already holds bronze rows starts after the newest record landed on each partition.
INSERT INTO ops.stream_offsets (kafka_topic, kafka_partition, next_offset)
SELECT kafka_topic, kafka_partition, max(kafka_offset) + 1
FROM (
    SELECT kafka_topic, kafka_partition, kafka_offset FROM bronze.transactions
    UNION ALL
    SELECT kafka_topic, kafka_partition, kafka_offset FROM ops.dead_letters WHERE kafka_offset >= 0
) AS landed
GROUP BY kafka_topic, kafka_partition;

GRANT SELECT, INSERT, UPDATE ON ops.stream_offsets TO scout_pipeline;
