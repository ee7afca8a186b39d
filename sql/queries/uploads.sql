-- Queries of bulk CSV upload jobs (ops.upload_jobs, ops.upload_errors).

-- name: upload_job_create
INSERT INTO ops.upload_jobs (id, filename, owner, mapping, spool_path)
VALUES (%(id)s, %(filename)s, %(owner)s, %(mapping)s, %(spool_path)s);

-- name: upload_lock
-- A session lock held by the process running the job; released by PostgreSQL when that process dies.
SELECT pg_try_advisory_lock(hashtextextended('scout.upload:' || %(id)s::text, 0));

-- name: upload_jobs_running
SELECT id FROM ops.upload_jobs WHERE state = 'running' ORDER BY created_at;

-- name: upload_job_claim
-- Run while holding the job's lock: the job's checkpoint, if it is still running.
UPDATE ops.upload_jobs SET resumes = resumes + 1, updated_at = now()
WHERE id = %(id)s AND state = 'running'
RETURNING id, mapping, spool_path, rows_read, rows_accepted, rows_duplicate, rows_rejected,
          transactions_published, last_published_invoice;

-- name: upload_invalid_rows
-- Rows that count against the circuit breaker (not the documented exclusions, not duplicates).
SELECT count(*) FROM ops.upload_errors
WHERE job_id = %(id)s AND reason <> ALL (%(excluded)s::text[]) AND reason <> 'duplicate_line';

-- name: upload_job_progress
UPDATE ops.upload_jobs
SET rows_read = %(read)s, rows_accepted = %(accepted)s, rows_duplicate = %(duplicate)s,
    rows_rejected = %(rejected)s, transactions_published = %(published)s,
    last_published_invoice = %(last_invoice)s, updated_at = now()
WHERE id = %(id)s;

-- name: upload_job_finish
UPDATE ops.upload_jobs
SET state = %(state)s, reason = %(reason)s, rows_read = %(read)s, rows_accepted = %(accepted)s,
    rows_duplicate = %(duplicate)s, rows_rejected = %(rejected)s, transactions_published = %(published)s,
    last_published_invoice = %(last_invoice)s, updated_at = now(), finished_at = now()
WHERE id = %(id)s;

-- name: upload_error_insert
INSERT INTO ops.upload_errors (job_id, row_num, col, reason, value)
VALUES (%(job_id)s, %(row)s, %(column)s, %(reason)s, %(value)s)
ON CONFLICT DO NOTHING;

-- name: upload_job_get
SELECT id, filename, state, reason, resumes, rows_read, rows_accepted, rows_duplicate, rows_rejected,
       transactions_published, last_published_invoice, created_at, updated_at, finished_at
FROM ops.upload_jobs WHERE id = %(id)s;

-- name: upload_errors_list
SELECT row_num, col, reason, value FROM ops.upload_errors WHERE job_id = %(id)s ORDER BY row_num, col;
