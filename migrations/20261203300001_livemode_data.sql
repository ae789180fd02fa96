-- Test mode beside live mode: the catalogue, orders, eSIMs, outgoing events and vendor
-- callbacks each belong to one mode (default test, see the previous migration, which also
-- explains how rows from before are adopted). Every key that could collide between modes
-- includes the mode.
ALTER TABLE vendor_offers ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE vendor_offers DROP CONSTRAINT vendor_offers_vendor_sku_key;
ALTER TABLE vendor_offers ADD CONSTRAINT vendor_offers_mode_vendor_sku UNIQUE (livemode, vendor, sku);

ALTER TABLE plans ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE plans DROP CONSTRAINT plans_pkey;
ALTER TABLE plans ADD PRIMARY KEY (livemode, id);

ALTER TABLE orders ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE orders DROP CONSTRAINT orders_storefront_id_idempotency_key_key;
ALTER TABLE orders ADD CONSTRAINT orders_idempotency UNIQUE (storefront_id, livemode, idempotency_key);

ALTER TABLE esims ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE outbox ADD COLUMN livemode boolean NOT NULL DEFAULT false;

ALTER TABLE vendor_events ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE vendor_events DROP CONSTRAINT vendor_events_vendor_dedupe_key_key;
ALTER TABLE vendor_events ADD CONSTRAINT vendor_events_mode_dedupe UNIQUE (livemode, vendor, dedupe_key);

ALTER TABLE vendor_sync_state ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE vendor_sync_state DROP CONSTRAINT vendor_sync_state_pkey;
ALTER TABLE vendor_sync_state ADD PRIMARY KEY (livemode, vendor);

ALTER TABLE vendor_breakers ADD COLUMN livemode boolean NOT NULL DEFAULT false;
ALTER TABLE vendor_breakers DROP CONSTRAINT vendor_breakers_pkey;
ALTER TABLE vendor_breakers ADD PRIMARY KEY (livemode, vendor);
