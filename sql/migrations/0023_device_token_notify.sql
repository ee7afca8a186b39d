-- Every API process keeps the tokens it has seen in memory and drops one when its row changes: a change to
-- a token (revoked, expiry, scopes, stores, device, rate limit, name, deleted) is announced on the channel
-- scout_device_tokens with the token's hash as the payload, at commit. Noting a token's last use is not a
-- change worth announcing (the API does it at most once a minute per token). A new token needs no
-- announcement: the API keeps only tokens it found.

CREATE FUNCTION ops.device_tokens_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('scout_device_tokens', OLD.token_hash);
    IF TG_OP = 'UPDATE' AND NEW.token_hash IS DISTINCT FROM OLD.token_hash THEN
        PERFORM pg_notify('scout_device_tokens', NEW.token_hash);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER device_tokens_notify_update
    AFTER UPDATE ON ops.device_tokens
    FOR EACH ROW
    WHEN ((OLD.token_hash, OLD.name, OLD.scopes, OLD.device_id, OLD.store_ids, OLD.rate_limit_per_s,
           OLD.expires_at, OLD.revoked_at)
          IS DISTINCT FROM
          (NEW.token_hash, NEW.name, NEW.scopes, NEW.device_id, NEW.store_ids, NEW.rate_limit_per_s,
           NEW.expires_at, NEW.revoked_at))
    EXECUTE FUNCTION ops.device_tokens_notify();

CREATE TRIGGER device_tokens_notify_delete
    AFTER DELETE ON ops.device_tokens
    FOR EACH ROW
    EXECUTE FUNCTION ops.device_tokens_notify();
