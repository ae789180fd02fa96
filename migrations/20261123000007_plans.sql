-- Offer data kinds use the vendor layer's names.
ALTER TABLE vendor_offers DROP CONSTRAINT vendor_offers_data_kind_check;
ALTER TABLE vendor_offers ADD CONSTRAINT vendor_offers_data_kind_check
    CHECK (data_kind IN ('total', 'daily', 'unlimited'));

-- Offers are matched to plans by coverage: "every offer covering FR and DE" is a
-- containment query on the country array.
CREATE INDEX vendor_offers_countries ON vendor_offers USING gin (countries) WHERE active;
CREATE INDEX vendor_offers_vendor_active ON vendor_offers (vendor) WHERE active;

-- The normalized catalogue storefronts see, rebuilt from the active offers after every sync.
-- A plan whose offers all went inactive stays as a row (orders reference its id) but is
-- no longer active.
CREATE TABLE plans (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    countries       text[] NOT NULL,
    region          text,
    data_kind       text NOT NULL CHECK (data_kind IN ('total', 'daily', 'unlimited')),
    -- Marketed amount in binary units (per day for daily plans); NULL when unlimited.
    data_bytes      bigint CHECK (data_bytes > 0),
    -- Total data over the validity for filtering and sorting; unlimited sorts last.
    data_sort_bytes bigint NOT NULL,
    validity_days   integer NOT NULL CHECK (validity_days > 0),
    price_amount    numeric(20, 2) NOT NULL CHECK (price_amount >= 0),
    price_currency  char(3) NOT NULL,
    networks        jsonb NOT NULL DEFAULT '[]',
    supports_topup  boolean NOT NULL DEFAULT false,
    offer_count     integer NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plans_countries ON plans USING gin (countries) WHERE active;
CREATE INDEX plans_by_price ON plans (price_amount, id) WHERE active;
CREATE INDEX plans_by_data ON plans (data_sort_bytes, id) WHERE active;
CREATE INDEX plans_by_days ON plans (validity_days, id) WHERE active;
