-- Each replica keeps the plans and the storefront keys in memory. A change to either bumps
-- its version here in the changing transaction and sends NOTIFY esim_cache (delivered at
-- commit); replicas LISTEN and also poll these two rows, so none serves a change late by
-- more than a second even if a notification is lost.
CREATE TABLE cache_versions (
    name    text PRIMARY KEY CHECK (name IN ('plans', 'api_keys')),
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO cache_versions (name) VALUES ('plans'), ('api_keys');

-- For tables written with transition tables: bumps only when the statement changed rows,
-- so a sync that leaves every plan as it was does not make replicas reload.
CREATE FUNCTION bump_cache_version_if_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        UPDATE cache_versions SET version = version + 1 WHERE name = TG_ARGV[0];
        PERFORM pg_notify('esim_cache', TG_ARGV[0]);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION bump_cache_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_versions SET version = version + 1 WHERE name = TG_ARGV[0];
    PERFORM pg_notify('esim_cache', TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE TRIGGER plans_inserted AFTER INSERT ON plans REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_version_if_changed('plans');
CREATE TRIGGER plans_updated AFTER UPDATE ON plans REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_version_if_changed('plans');
CREATE TRIGGER plans_deleted AFTER DELETE ON plans REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_version_if_changed('plans');

-- Key use (`last_used_at`) is not a change a replica needs to hear about; issuing,
-- revoking or deleting a key is.
CREATE TRIGGER storefront_api_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF storefront_id, lookup, key_hash, revoked_at
    ON storefront_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_version('api_keys');
