-- Tenants (SaaS clients) with their IP and origin whitelists, their API keys, and users'
-- personal access tokens. Lists are JSON arrays of strings. Only hashes of keys and PATs.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    origins TEXT NOT NULL,
    ip_whitelist TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    allow_ips TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION,
    rotated_to TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

CREATE TABLE pats (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION
);
CREATE INDEX pats_by_user ON pats (user_id);

-- A tenant's end users (SDK sessions) are found by (tenant, external id); their `email`
-- column holds a login name that cannot collide with a real address, and the address they
-- gave, which need not be unique across tenants, is kept here.
ALTER TABLE users ADD COLUMN contact_email TEXT;
CREATE UNIQUE INDEX users_by_external_id ON users (tenant_id, external_id);
