CREATE TABLE orders (
    id               text PRIMARY KEY CHECK (id LIKE 'ord\_%'),
    storefront_id    text NOT NULL REFERENCES storefronts (id),
    kind             text NOT NULL CHECK (kind IN ('new', 'topup')),
    status           text NOT NULL CHECK (status IN ('pending', 'provisioning', 'completed', 'failed', 'cancelled')),
    plan_id          text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 10),
    price_amount     numeric(20, 2) NOT NULL CHECK (price_amount >= 0),
    price_currency   char(3) NOT NULL,
    reference        text,
    customer_email   text,
    -- For top-ups: the eSIM the plan is added to.
    target_iccid     text,
    -- Idempotency: the storefront's key and a hash of the request it came with. The unique
    -- constraint, not an in-memory lock, decides between concurrent duplicates.
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL,
    response_status  integer,
    response_body    jsonb,
    -- The vendor offer finally bought and what it cost.
    vendor           text,
    vendor_offer_id  bigint REFERENCES vendor_offers (id),
    vendor_reference text,
    cost_amount      numeric(20, 6),
    cost_currency    char(3),
    failure_code     text,
    failure_message  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (storefront_id, idempotency_key)
);
CREATE INDEX orders_storefront_created ON orders (storefront_id, created_at DESC, id DESC);
CREATE INDEX orders_unfinished ON orders (updated_at) WHERE status IN ('pending', 'provisioning');

-- One row per vendor tried for an order, in order. `outcome` is written before the vendor is
-- called ('pending') so that a crash mid-call leaves an attempt the provisioner must reconcile.
CREATE TABLE order_attempts (
    id               bigserial PRIMARY KEY,
    order_id         text NOT NULL REFERENCES orders (id),
    seq              integer NOT NULL CHECK (seq >= 1),
    vendor           text NOT NULL,
    vendor_offer_id  bigint REFERENCES vendor_offers (id),
    outcome          text NOT NULL CHECK (outcome IN ('pending', 'placed', 'rejected', 'unreachable', 'unknown', 'not_found')),
    vendor_reference text,
    error_code       text,
    error_message    text,
    latency_ms       bigint,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (order_id, seq)
);
