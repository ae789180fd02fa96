-- Why each ranking chose its vendor: one row per ranking of an order (at intake, and each
-- time the purchase loop ranks again), written in the transaction of the attempt it led to
-- (`attempt_id`; NULL when no candidate was left). `choice` is bounded by the writer (at
-- most 20 candidates and 20 exclusions, the rest counted).
CREATE TABLE order_routings (
    id         bigserial PRIMARY KEY,
    order_id   text NOT NULL REFERENCES orders (id),
    attempt_id bigint REFERENCES order_attempts (id),
    choice     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_routings_order ON order_routings (order_id, id);

-- What the vendor said it charged, when its answer says (eSIM Go's order total): the
-- cost actually paid, next to the synced cost the attempt expected (`cost_amount`).
ALTER TABLE order_attempts
    ADD COLUMN charged_amount numeric(20, 6),
    ADD COLUMN charged_currency char(3);
