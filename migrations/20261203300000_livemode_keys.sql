-- Test mode beside live mode: every storefront key is a test key or a live key, and the mode
-- follows the key. `livemode` defaults to false (test) everywhere: a row written without a
-- mode can never reach a live vendor.
--
-- Rows from before modes existed belonged to whatever the deployment ran: `mode_adoption`
-- remembers that such rows exist, and the first start after this migration moves them all
-- to live mode when that start has live vendors (`store::modes::adopt_legacy`), so an
-- upgraded production gateway keeps selling real eSIMs to its existing keys and a sandbox
-- deployment keeps simulating.
ALTER TABLE storefront_api_keys ADD COLUMN livemode boolean NOT NULL DEFAULT false;

-- Test-mode events go here when set, else to webhook_url.
ALTER TABLE storefronts ADD COLUMN test_webhook_url text;

DROP TRIGGER storefront_api_keys_changed ON storefront_api_keys;
CREATE TRIGGER storefront_api_keys_changed
    AFTER INSERT OR DELETE OR UPDATE OF storefront_id, lookup, key_hash, revoked_at, livemode
    ON storefront_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_version('api_keys');

CREATE TABLE mode_adoption (pending boolean NOT NULL);
INSERT INTO mode_adoption SELECT true WHERE EXISTS (SELECT 1 FROM storefronts);
