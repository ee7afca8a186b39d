-- Bulk CSV uploads: one job per upload with its counts and state, and the rows it did not take.

CREATE TABLE ops.upload_jobs (
    id           uuid        PRIMARY KEY,
    filename     text        NOT NULL DEFAULT '',
    owner        text        NOT NULL DEFAULT '',
    state        text        NOT NULL DEFAULT 'running'
                 CHECK (state IN ('running', 'succeeded', 'failed', 'stopped')),
    reason       text,
    rows_read    bigint      NOT NULL DEFAULT 0,
    rows_accepted bigint     NOT NULL DEFAULT 0,
    rows_duplicate bigint    NOT NULL DEFAULT 0,
    rows_rejected bigint     NOT NULL DEFAULT 0,
    transactions_published bigint NOT NULL DEFAULT 0,
    last_published_invoice text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE TABLE ops.upload_errors (
    job_id  uuid    NOT NULL REFERENCES ops.upload_jobs (id) ON DELETE CASCADE,
    row_num bigint  NOT NULL,
    col     text    NOT NULL,
    reason  text    NOT NULL,
    value   text    NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, row_num, col)
);

GRANT SELECT, INSERT, UPDATE ON ops.upload_jobs TO scout_ingest;
GRANT SELECT, INSERT ON ops.upload_errors TO scout_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON ops.upload_jobs, ops.upload_errors TO scout_pipeline;
