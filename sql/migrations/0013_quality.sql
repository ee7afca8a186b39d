-- Quality guardrails: warnings that landed in silver, check history, and alerts.

-- Transactions that broke a `warning` rule and landed anyway: one row per (transaction, rule).
CREATE TABLE silver.transaction_warnings (
    txn_id  bigint      NOT NULL REFERENCES silver.transactions (txn_id) ON DELETE CASCADE,
    rule    text        NOT NULL,
    detail  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txn_id, rule)
);
CREATE INDEX transaction_warnings_rule_idx ON silver.transaction_warnings (rule, created_at);

-- The batch checks look at a recent window of silver by the time a row landed there.
CREATE INDEX transactions_processed_at_idx ON silver.transactions (processed_at);
CREATE INDEX quarantine_created_at_idx ON silver.quarantine (created_at);

-- One row per suite run, one row per check (expectation) of a run.
CREATE TABLE ops.quality_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    suite        text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    window_start timestamptz,
    success      boolean     NOT NULL,
    checks       integer     NOT NULL,
    failed       integer     NOT NULL,
    errors       integer     NOT NULL,
    duration_ms  integer     NOT NULL
);
CREATE INDEX quality_runs_suite_idx ON ops.quality_runs (suite, started_at DESC);

CREATE TABLE ops.quality_results (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           bigint  NOT NULL REFERENCES ops.quality_runs (id) ON DELETE CASCADE,
    expectation      text    NOT NULL,
    rule             text    NOT NULL,
    subject          text    NOT NULL DEFAULT '',
    severity         text    NOT NULL CHECK (severity IN ('critical', 'warning')),
    success          boolean NOT NULL,
    observed_value   text,
    unexpected_count bigint  NOT NULL DEFAULT 0,
    failing_keys     jsonb   NOT NULL DEFAULT '[]'::jsonb,
    error            text
);
CREATE INDEX quality_results_run_idx ON ops.quality_results (run_id);
CREATE INDEX quality_results_rule_idx ON ops.quality_results (rule, id DESC);

-- One open alert per (rule, subject): repeats update it; a passing check resolves it.
CREATE TABLE ops.alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            text        NOT NULL,
    subject         text        NOT NULL DEFAULT '',
    severity        text        NOT NULL CHECK (severity IN ('critical', 'warning')),
    message         text        NOT NULL,
    details         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    count           integer     NOT NULL DEFAULT 1 CHECK (count > 0),
    resolved_at     timestamptz,
    notified_status text CHECK (notified_status IN ('firing', 'resolved')),
    notified_at     timestamptz
);
CREATE UNIQUE INDEX alerts_open_key ON ops.alerts (rule, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_resolved_idx ON ops.alerts (resolved_at DESC) WHERE resolved_at IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON silver.transaction_warnings, ops.quality_runs, ops.quality_results,
    ops.alerts TO scout_pipeline;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ops TO scout_pipeline;
