-- Storefronts are the gateway's tenants; every order and eSIM belongs to exactly one.
CREATE TABLE storefronts (
    id             text PRIMARY KEY CHECK (id LIKE 'sf\_%'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    webhook_url    text,
    -- Needed in clear to sign outgoing events; never returned after creation.
    webhook_secret text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored only as SHA-256 hashes. `lookup` is the non-secret key prefix used to
-- find the row; the hash is then compared in constant time.
CREATE TABLE storefront_api_keys (
    id            text PRIMARY KEY CHECK (id LIKE 'key\_%'),
    storefront_id text NOT NULL REFERENCES storefronts (id),
    lookup        text NOT NULL UNIQUE,
    key_hash      bytea NOT NULL CHECK (length(key_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX storefront_api_keys_storefront ON storefront_api_keys (storefront_id);
