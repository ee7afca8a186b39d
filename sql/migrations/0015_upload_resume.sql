-- Resumable uploads: a job keeps its mapping and where its spooled file is, so an API process that starts
-- can take over a job whose process died (the owner holds a session advisory lock while the job runs).

ALTER TABLE ops.upload_jobs
    ADD COLUMN mapping    jsonb,
    ADD COLUMN spool_path text,
    ADD COLUMN resumes    integer NOT NULL DEFAULT 0;

CREATE INDEX upload_jobs_running ON ops.upload_jobs (created_at) WHERE state = 'running';
