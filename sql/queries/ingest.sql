-- Queries of the ingest API (ingest_api): device tokens and Idempotency-Key answers.

-- name: tokens_by_hash
-- Every token of one batch of concurrent requests in one round trip.
SELECT token_hash, id, name, scopes, device_id, store_ids, rate_limit_per_s, expires_at, revoked_at
FROM ops.device_tokens
WHERE token_hash = ANY(%(token_hashes)s);

-- name: token_touch
UPDATE ops.device_tokens SET last_used_at = now()
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: token_insert
INSERT INTO ops.device_tokens (name, token_hash, token_prefix, scopes, device_id, store_ids, rate_limit_per_s,
                               expires_at)
VALUES (%(name)s, %(token_hash)s, %(token_prefix)s, %(scopes)s, %(device_id)s, %(store_ids)s,
        %(rate_limit_per_s)s, %(expires_at)s)
RETURNING id, created_at;

-- name: token_list
SELECT id, name, token_prefix, scopes, device_id, store_ids, rate_limit_per_s, created_at, expires_at, revoked_at,
       last_used_at
FROM ops.device_tokens
WHERE %(include_revoked)s OR revoked_at IS NULL
ORDER BY id;

-- name: token_revoke
UPDATE ops.device_tokens SET revoked_at = now()
WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id, name;

-- name: idempotency_claim
-- Reserve (owner, key) for this request; an expired answer or an abandoned reservation is taken over.
INSERT INTO ops.idempotency_keys AS k (owner, key, fingerprint)
VALUES (%(owner)s, %(key)s, %(fingerprint)s)
ON CONFLICT (owner, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, status_code = NULL, response_body = NULL, created_at = now(),
    completed_at = NULL
WHERE k.created_at < now() - make_interval(secs => %(retention_s)s)
   OR (k.status_code IS NULL AND k.created_at < now() - make_interval(secs => %(abandoned_s)s))
RETURNING k.owner;

-- name: idempotency_get
SELECT fingerprint, status_code, response_body
FROM ops.idempotency_keys
WHERE owner = %(owner)s AND key = %(key)s;

-- name: idempotency_complete
UPDATE ops.idempotency_keys
SET status_code = %(status_code)s, response_body = %(response_body)s, completed_at = now()
WHERE owner = %(owner)s AND key = %(key)s AND fingerprint = %(fingerprint)s AND status_code IS NULL;

-- name: idempotency_release
DELETE FROM ops.idempotency_keys
WHERE owner = %(owner)s AND key = %(key)s AND fingerprint = %(fingerprint)s AND status_code IS NULL;

-- name: idempotency_purge
DELETE FROM ops.idempotency_keys
WHERE ctid = ANY (ARRAY(SELECT ctid FROM ops.idempotency_keys
                        WHERE created_at < now() - make_interval(secs => %(retention_s)s)
                        LIMIT %(limit)s));
