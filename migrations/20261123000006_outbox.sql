-- Events for storefronts, written in the same transaction as the state change they describe.
CREATE TABLE outbox (
    id              text PRIMARY KEY CHECK (id LIKE 'evt\_%'),
    storefront_id   text NOT NULL REFERENCES storefronts (id),
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE outbox_attempts (
    id           bigserial PRIMARY KEY,
    outbox_id    text NOT NULL REFERENCES outbox (id),
    attempted_at timestamptz NOT NULL DEFAULT now(),
    http_status  integer,
    error        text,
    duration_ms  bigint NOT NULL
);
CREATE INDEX outbox_attempts_event ON outbox_attempts (outbox_id);
