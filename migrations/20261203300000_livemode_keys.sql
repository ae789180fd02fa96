-- Test mode beside live mode: every storefront key is a test key or a live key, and the mode
-- follows the key. Keys issued before modes existed get NULL here; the next start adopts them
-- into the mode the deployment runs in (`store::modes::adopt_legacy`: live when live vendors
-- are configured, else test), so an upgraded production gateway keeps selling real eSIMs to
-- its existing keys and a sandbox deployment keeps simulating.
ALTER TABLE storefront_api_keys ADD COLUMN livemode boolean;
CREATE INDEX storefront_api_keys_mode ON storefront_api_keys (storefront_id, livemode)
    WHERE revoked_at IS NULL;

-- Test-mode events go here when set, else to webhook_url.
ALTER TABLE storefronts ADD COLUMN test_webhook_url text;

DROP TRIGGER storefront_api_keys_changed ON storefront_api_keys;
CREATE TRIGGER storefront_api_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF storefront_id, lookup, key_hash, revoked_at, livemode
    ON storefront_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_version('api_keys');
