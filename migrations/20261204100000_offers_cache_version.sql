-- Each replica keeps the offers behind each plan key in memory, so ranking an order reads
-- nothing from Postgres. Any write to vendor_offers (a sync) moves this version and
-- notifies, like the plans; a sync rewrites every offer's last_seen_at anyway, so there is
-- no "changed rows only" variant to save work here.
ALTER TABLE cache_versions DROP CONSTRAINT cache_versions_name_check;
ALTER TABLE cache_versions ADD CONSTRAINT cache_versions_name_check
    CHECK (name IN ('plans', 'api_keys', 'offers'));
INSERT INTO cache_versions (name) VALUES ('offers');

CREATE TRIGGER vendor_offers_changed
    AFTER INSERT OR UPDATE OR DELETE ON vendor_offers
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_version('offers');
