-- Silver: cleaned, linked, constrained.
CREATE TABLE silver.stores (
    store_id    text PRIMARY KEY,
    name        text,
    region      text,
    timezone    text,
    first_seen  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE silver.products (
    product_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text UNIQUE,
    name        text NOT NULL,
    name_norm   text NOT NULL,
    brand       text,
    category    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_name_norm_idx ON silver.products (name_norm);

CREATE TABLE silver.transactions (
    txn_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_id         text          NOT NULL REFERENCES silver.stores (store_id),
    transaction_id   text          NOT NULL,
    ts               timestamptz   NOT NULL,
    total_amount     numeric(12,2) NOT NULL,
    currency         text,
    device_id        text,
    customer_segment text,
    payment_method   text,
    item_count       integer       NOT NULL,
    source           text          NOT NULL,
    event_hash       char(64)      NOT NULL UNIQUE,
    bronze_id        bigint        NOT NULL,
    received_at      timestamptz   NOT NULL,
    processed_at     timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT transactions_store_txn_key UNIQUE (store_id, transaction_id)
);
CREATE INDEX transactions_ts_idx ON silver.transactions (ts);

CREATE TABLE silver.line_items (
    txn_id       bigint        NOT NULL REFERENCES silver.transactions (txn_id) ON DELETE CASCADE,
    line_no      integer       NOT NULL,
    product_key  bigint        REFERENCES silver.products (product_key),
    product_id   text,
    product_name text,
    qty          integer       NOT NULL,
    unit_price   numeric(12,2) NOT NULL,
    line_amount  numeric(12,2) NOT NULL,
    link_method  text          NOT NULL CHECK (link_method IN ('sku', 'name', 'fuzzy', 'unlinked')),
    link_confidence numeric(4,3) NOT NULL CHECK (link_confidence BETWEEN 0 AND 1),
    PRIMARY KEY (txn_id, line_no)
);
CREATE INDEX line_items_product_idx ON silver.line_items (product_key);

CREATE TABLE silver.quarantine (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bronze_id      bigint      NOT NULL,
    event_hash     char(64)    NOT NULL,
    store_id       text,
    transaction_id text,
    reasons        text[]      NOT NULL CHECK (cardinality(reasons) > 0),
    details        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz,
    CONSTRAINT quarantine_bronze_key UNIQUE (bronze_id)
);
CREATE INDEX quarantine_open_idx ON silver.quarantine (created_at) WHERE replayed_at IS NULL;
