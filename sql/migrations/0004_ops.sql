-- Ops: watermarks, job runs, gold refresh log, dead letters.

-- A counter bumped inside every silver transaction that changed data; gold refreshes compare
-- against it (a sequence would not do: nextval is not transactional).
CREATE TABLE ops.watermarks (
    name       text PRIMARY KEY,
    version    bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ops.watermarks (name) VALUES ('silver');

CREATE TABLE ops.gold_refresh_state (
    view_name       text PRIMARY KEY,
    watermark       bigint      NOT NULL,
    last_refresh_at timestamptz NOT NULL,
    rows            bigint      NOT NULL,
    duration_ms     integer     NOT NULL
);

CREATE TABLE ops.gold_refresh_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    view_name   text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    status      text        NOT NULL CHECK (status IN ('refreshed', 'skipped', 'failed')),
    reason      text,
    watermark   bigint,
    rows        bigint,
    duration_ms integer     NOT NULL
);
CREATE INDEX gold_refresh_log_view_idx ON ops.gold_refresh_log (view_name, started_at DESC);

CREATE TABLE ops.job_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name    text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    error       text,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX job_runs_job_idx ON ops.job_runs (job_name, started_at DESC);

CREATE TABLE ops.dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kafka_topic     text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    message_key     bytea,
    raw             bytea       NOT NULL,
    reason          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dead_letters_position_key UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
