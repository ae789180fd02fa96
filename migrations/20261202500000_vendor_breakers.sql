-- One circuit breaker per vendor, shared by every replica. `open_until` set and in the
-- future: open; passed: half-open, and the one order holding an unexpired probe lease
-- (`probe_expires_at`, fenced by `probe_version`) may try the vendor.
CREATE TABLE vendor_breakers (
    vendor               text PRIMARY KEY,
    consecutive_failures integer NOT NULL DEFAULT 0,
    opened_at            timestamptz,
    open_until           timestamptz,
    probe_version        bigint NOT NULL DEFAULT 0,
    probe_expires_at     timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- The health window reads each vendor's recent attempts.
CREATE INDEX order_attempts_vendor_started ON order_attempts (vendor, started_at);
