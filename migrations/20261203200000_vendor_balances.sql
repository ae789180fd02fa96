-- The last prepaid balance read from each vendor, shared by every replica: routing skips a
-- vendor whose last known balance cannot pay for an order, and the low-balance alert is
-- decided here (`low` flips in the same transaction that records the alert, so a crossing
-- alerts once however many replicas read the balance).
CREATE TABLE vendor_balances (
    vendor             text PRIMARY KEY,
    -- The last balance read successfully (kept while later reads fail).
    amount             numeric,
    currency           text,
    read_at            timestamptz,
    -- False once the vendor answered that it has no balance operation.
    supported          boolean NOT NULL DEFAULT true,
    last_error         text,
    last_error_at      timestamptz,
    -- The low-balance threshold the last read was judged by, in `currency`.
    threshold          numeric,
    low                boolean NOT NULL DEFAULT false,
    low_since          timestamptz,
    -- When a replica last claimed a read: the schedule and the after-purchase nudge both
    -- claim through it, so replicas do not read the same balance at once.
    refresh_started_at timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Alerts for the operator (not for a storefront): always recorded here; also delivered
-- through the outbox, with no storefront, when an operator webhook is configured.
CREATE TABLE operator_alerts (
    id         text PRIMARY KEY CHECK (id LIKE 'evt\_%'),
    event_type text NOT NULL,
    vendor     text,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- An outbox row without a storefront is an operator alert, sent to OPERATOR_WEBHOOK_URL.
ALTER TABLE outbox ALTER COLUMN storefront_id DROP NOT NULL;
