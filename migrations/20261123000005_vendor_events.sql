-- Raw vendor callbacks, stored after verification and before they are applied.
CREATE TABLE vendor_events (
    id           bigserial PRIMARY KEY,
    vendor       text NOT NULL,
    -- Derived from the event's own identity so a redelivery is recognised.
    dedupe_key   text NOT NULL,
    kind         text,
    headers      jsonb NOT NULL DEFAULT '{}',
    body         bytea NOT NULL,
    status       text NOT NULL CHECK (status IN ('received', 'applied', 'waiting', 'ignored', 'unparseable', 'failed')),
    error        text,
    order_ref    text,
    iccid        text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    UNIQUE (vendor, dedupe_key)
);
CREATE INDEX vendor_events_pending ON vendor_events (received_at) WHERE status IN ('received', 'waiting');
