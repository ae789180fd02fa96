-- Every offer ever seen in a vendor catalogue. Rows are never deleted (orders reference them);
-- offers that vanish from the vendor's catalogue are marked inactive.
CREATE TABLE vendor_offers (
    id              bigserial PRIMARY KEY,
    vendor          text NOT NULL,
    sku             text NOT NULL,
    name            text NOT NULL,
    countries       text[] NOT NULL DEFAULT '{}',
    region_label    text,
    data_kind       text CHECK (data_kind IN ('fixed', 'daily', 'unlimited')),
    -- Exact byte count as the vendor counts it (usage arithmetic) and the marketed amount in
    -- binary units (plan grouping and routing).
    data_bytes      bigint CHECK (data_bytes >= 0),
    marketed_bytes  bigint CHECK (marketed_bytes >= 0),
    validity_days   integer CHECK (validity_days > 0),
    cost_amount     numeric(20, 6) NOT NULL CHECK (cost_amount >= 0),
    cost_currency   char(3) NOT NULL,
    networks        jsonb NOT NULL DEFAULT '[]',
    supports_topup  boolean NOT NULL DEFAULT false,
    is_topup        boolean NOT NULL DEFAULT false,
    plan_id         text,
    -- Reasons an offer must not be sold (e.g. 'unparsed', 'ekyc_required').
    flags           text[] NOT NULL DEFAULT '{}',
    raw             jsonb NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (vendor, sku)
);
CREATE INDEX vendor_offers_plan ON vendor_offers (plan_id) WHERE active;

-- Per-vendor catalogue sync bookkeeping, shown in /admin/vendors.
CREATE TABLE vendor_sync_state (
    vendor            text PRIMARY KEY,
    last_started_at   timestamptz,
    last_success_at   timestamptz,
    last_error        text,
    last_error_at     timestamptz,
    offer_count       integer NOT NULL DEFAULT 0,
    unparsed_count    integer NOT NULL DEFAULT 0,
    last_duration_ms  bigint
);
