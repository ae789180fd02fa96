-- Provisioning bookkeeping: who is working on an order (a lease, so a crashed replica's
-- orders are picked up again once it expires) and when the provisioner should look next.
ALTER TABLE orders ADD COLUMN lease_until timestamptz;
ALTER TABLE orders ADD COLUMN next_check_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE orders ADD COLUMN checks integer NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN retail_cost_amount numeric(20, 6);
DROP INDEX orders_unfinished;
CREATE INDEX orders_unfinished ON orders (next_check_at) WHERE status IN ('pending', 'provisioning');
CREATE INDEX orders_reference ON orders (storefront_id, reference);

ALTER TABLE order_attempts ADD COLUMN cost_amount numeric(20, 6);
ALTER TABLE order_attempts ADD COLUMN cost_currency char(3);
ALTER TABLE order_attempts ADD COLUMN sku text;
ALTER TABLE order_attempts ADD COLUMN error_kind text;

-- The vendor's own key for an eSIM (eSIM Access esimTranNo, MicroEsim device_id…): some
-- vendors need it rather than the ICCID for usage, top-up and cancel.
ALTER TABLE esims ADD COLUMN vendor_esim_ref text;
ALTER TABLE esims ADD COLUMN ios_install_url text;
ALTER TABLE esims ADD COLUMN android_install_url text;
