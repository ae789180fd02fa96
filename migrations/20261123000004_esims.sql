CREATE TABLE esims (
    iccid             text PRIMARY KEY CHECK (iccid ~ '^[0-9]{18,22}F?$'),
    order_id          text NOT NULL REFERENCES orders (id),
    storefront_id     text NOT NULL REFERENCES storefronts (id),
    vendor            text NOT NULL,
    vendor_reference  text,
    plan_id           text NOT NULL,
    status            text NOT NULL CHECK (status IN ('ready', 'installed', 'active', 'depleted', 'expired', 'cancelled')),
    lpa               text,
    smdp_address      text,
    matching_id       text,
    used_bytes        bigint,
    total_bytes       bigint,
    unlimited         boolean NOT NULL DEFAULT false,
    activated_at      timestamptz,
    expires_at        timestamptz,
    usage_updated_at  timestamptz,
    -- Time of the newest vendor fact applied, so older events never move the eSIM backwards.
    status_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX esims_order ON esims (order_id);
CREATE INDEX esims_storefront ON esims (storefront_id);
