-- Bronze: every event exactly as it arrived, once per event hash.
CREATE TABLE bronze.transactions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_hash      char(64)    NOT NULL,
    source          text        NOT NULL CHECK (source IN ('api', 'bulk', 'simulator')),
    store_id        text        NOT NULL,
    transaction_id  text        NOT NULL,
    payload         jsonb       NOT NULL,
    received_at     timestamptz NOT NULL,
    landed_at       timestamptz NOT NULL DEFAULT now(),
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    processed_at    timestamptz,
    CONSTRAINT transactions_event_hash_key UNIQUE (event_hash)
);

-- The silver step claims unprocessed rows in id order; keep that scan tiny.
CREATE INDEX transactions_unprocessed_idx ON bronze.transactions (id) WHERE processed_at IS NULL;
CREATE INDEX transactions_received_at_idx ON bronze.transactions (received_at);
