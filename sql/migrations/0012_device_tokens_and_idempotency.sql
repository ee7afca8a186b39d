-- Ingest API state: device bearer tokens (stored as SHA-256 only) and Idempotency-Key answers.

-- A token is shown once at creation; only its hash and a short display prefix are kept.
-- store_ids NULL means every store; device_id NULL means any device; rate_limit_per_s NULL means
-- the API's default (SCOUT_RATE_LIMIT_PER_S).
CREATE TABLE ops.device_tokens (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    token_hash       char(64)    NOT NULL,
    token_prefix     text        NOT NULL,
    scopes           text[]      NOT NULL
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']::text[]),
    device_id        text,
    store_ids        text[]      CHECK (store_ids IS NULL OR cardinality(store_ids) > 0),
    rate_limit_per_s numeric(10,2) CHECK (rate_limit_per_s IS NULL OR rate_limit_per_s > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    revoked_at       timestamptz,
    last_used_at     timestamptz,
    CONSTRAINT device_tokens_hash_key UNIQUE (token_hash)
);

-- Stripe's rules: the first completed answer to (owner, key) is replayed for the same request
-- (fingerprint = SHA-256 of method, path and body) within the retention window; another request
-- with the key is refused. status_code NULL: the first request is still being processed.
CREATE TABLE ops.idempotency_keys (
    owner         text        NOT NULL,
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint   char(64)    NOT NULL,
    status_code   smallint,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_idx ON ops.idempotency_keys (created_at);

-- scout_ingest is the API's role: it reads tokens (and notes their last use) and keeps idempotency
-- answers. Creating and revoking tokens is for the owner (`scout tokens`), not the API.
GRANT USAGE ON SCHEMA ops TO scout_ingest;
GRANT SELECT ON ops.device_tokens TO scout_ingest;
GRANT UPDATE (last_used_at) ON ops.device_tokens TO scout_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.idempotency_keys TO scout_ingest;
