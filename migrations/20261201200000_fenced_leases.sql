-- Fenced leases: every claim of an order (request, provisioner, callback, cancel, admin)
-- bumps `lease_version`; the holder's writes after a vendor call check it in their
-- `WHERE`, so a worker whose lease lapsed and was taken over can no longer write.
ALTER TABLE orders ADD COLUMN lease_version bigint NOT NULL DEFAULT 0;
-- Set once when an unfinished order outlives ORDER_ATTENTION_AFTER: operators must look.
ALTER TABLE orders ADD COLUMN attention_reason text;
ALTER TABLE orders ADD COLUMN attention_at timestamptz;
CREATE INDEX orders_attention ON orders (attention_at) WHERE attention_at IS NOT NULL;

ALTER TABLE outbox ADD COLUMN lease_version bigint NOT NULL DEFAULT 0;

-- Callback events are applied by a worker under a lease; any event not in a final state
-- ('applied', 'ignored', 'unparseable') is retried, whatever a crash left it in.
ALTER TABLE vendor_events ADD COLUMN lease_until timestamptz;
ALTER TABLE vendor_events ADD COLUMN lease_version bigint NOT NULL DEFAULT 0;
ALTER TABLE vendor_events ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
DROP INDEX vendor_events_pending;
CREATE INDEX vendor_events_pending ON vendor_events (next_attempt_at)
    WHERE status IN ('received', 'waiting', 'failed');

-- Usage is monotonic per eSIM and bundle: `usage_measured_at` is the vendor's own time of
-- the applied reading (when it gives one); `usage_bundle` counts the data bundles the eSIM
-- has had (a completed top-up starts a new one); thresholds fire once per bundle.
ALTER TABLE esims ADD COLUMN usage_measured_at timestamptz;
ALTER TABLE esims ADD COLUMN usage_bundle integer NOT NULL DEFAULT 1;
ALTER TABLE esims ADD COLUMN thresholds_fired smallint[] NOT NULL DEFAULT '{}';
